/* File system requests: asyncio done-callbacks (docs/semantics.md §5). Each uv_fs_*
 * submitted with a callback captures the current context once, keyed by the
 * request; the callback runs in it and the capture is released after the
 * callback (the record is one-shot). A callback that cleans its request up
 * and submits it again from inside the callback re-registers the same key:
 * the registration layer keeps the record alive with the new capture.
 *
 * With a NULL callback libuv runs the request synchronously on the calling
 * thread, already in the current context: the wrapper only calls libuv.
 *
 * libuv reports every submission failure (EINVAL, ENOMEM from copying a
 * path) through the return value and never calls the callback then, so a
 * refused request keeps no capture. */
#include "loop_internal.h"

/* One trampoline for every fs request: the user's callback is in the record,
 * so all 36 wrappers can pass the same function to libuv. */
static void fs_trampoline(uv_fs_t *req) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(req->loop, req, UVW__SLOT_MAIN, &L, "uv_fs_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  /* The callback may free req (or clean it up and resubmit it): nothing
   * below touches req again. */
  ((uv_fs_cb)r->cb)(req);
  uvw__reg_end(&f, L, r);
}

#define UVW__UNPAREN(...) __VA_ARGS__

/* UVW__FS(name, (parameters between req and cb), (their names)) defines
 * uvw_fs_<name> with exactly uv_fs_<name>'s signature. */
#define UVW__FS(name, params, args)                                                                   \
  int uvw_fs_##name(uv_loop_t *loop, uv_fs_t *req, UVW__UNPAREN params, uv_fs_cb cb) {                \
    if (cb == NULL) return uv_fs_##name(loop, req, UVW__UNPAREN args, NULL);                          \
    uvw__loop_t *L;                                                                                   \
    uvw__reg_t *r;                                                                                    \
    int rc = uvw__register(loop, req, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);                     \
    if (rc != 0) return rc;                                                                           \
    return uvw__registered(L, r, uv_fs_##name(loop, req, UVW__UNPAREN args, fs_trampoline));          \
  }

UVW__FS(close, (uv_file file), (file))
UVW__FS(open, (const char *path, int flags, int mode), (path, flags, mode))
UVW__FS(read, (uv_file file, const uv_buf_t bufs[], unsigned int nbufs, int64_t offset), (file, bufs, nbufs, offset))
UVW__FS(unlink, (const char *path), (path))
UVW__FS(write, (uv_file file, const uv_buf_t bufs[], unsigned int nbufs, int64_t offset), (file, bufs, nbufs, offset))
UVW__FS(copyfile, (const char *path, const char *new_path, int flags), (path, new_path, flags))
UVW__FS(mkdir, (const char *path, int mode), (path, mode))
UVW__FS(mkdtemp, (const char *tpl), (tpl))
UVW__FS(mkstemp, (const char *tpl), (tpl))
UVW__FS(rmdir, (const char *path), (path))
UVW__FS(scandir, (const char *path, int flags), (path, flags))
UVW__FS(opendir, (const char *path), (path))
UVW__FS(readdir, (uv_dir_t * dir), (dir))
UVW__FS(closedir, (uv_dir_t * dir), (dir))
UVW__FS(stat, (const char *path), (path))
UVW__FS(fstat, (uv_file file), (file))
UVW__FS(rename, (const char *path, const char *new_path), (path, new_path))
UVW__FS(fsync, (uv_file file), (file))
UVW__FS(fdatasync, (uv_file file), (file))
UVW__FS(ftruncate, (uv_file file, int64_t offset), (file, offset))
UVW__FS(sendfile, (uv_file out_fd, uv_file in_fd, int64_t in_offset, size_t length), (out_fd, in_fd, in_offset, length))
UVW__FS(access, (const char *path, int mode), (path, mode))
UVW__FS(chmod, (const char *path, int mode), (path, mode))
UVW__FS(utime, (const char *path, double atime, double mtime), (path, atime, mtime))
UVW__FS(futime, (uv_file file, double atime, double mtime), (file, atime, mtime))
UVW__FS(lutime, (const char *path, double atime, double mtime), (path, atime, mtime))
UVW__FS(lstat, (const char *path), (path))
UVW__FS(link, (const char *path, const char *new_path), (path, new_path))
UVW__FS(symlink, (const char *path, const char *new_path, int flags), (path, new_path, flags))
UVW__FS(readlink, (const char *path), (path))
UVW__FS(realpath, (const char *path), (path))
UVW__FS(fchmod, (uv_file file, int mode), (file, mode))
UVW__FS(chown, (const char *path, uv_uid_t uid, uv_gid_t gid), (path, uid, gid))
UVW__FS(fchown, (uv_file file, uv_uid_t uid, uv_gid_t gid), (file, uid, gid))
UVW__FS(lchown, (const char *path, uv_uid_t uid, uv_gid_t gid), (path, uid, gid))
UVW__FS(statfs, (const char *path), (path))
