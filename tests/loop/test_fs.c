/* File system requests on a real loop and a real temporary directory
 * (docs/testing.md rows 17 and 22 for the fs done-callbacks): every uvw_fs_*
 * wrapper is exercised once for real, each with its own propagation
 * assertions; plus synchronous mode, failing requests, refused requests,
 * re-registration from inside the callback and release of the capture. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loop_internal.h"
#include "looptest.h"

static uvw_var_t *var;
static uv_loop_t loop;
static char scheduler_id[33];

static void setup(void) {
  var = tu_var("v", NULL);
  cr_assert_eq(uv_loop_init(&loop), 0);
}
TestSuite(fs, .init = setup);

/* What one callback saw. */
typedef struct {
  int fired;
  long seen;
  char id[33];
  uv_fs_type type;
  void *data;
} probe_t;

/* Records what the callback saw, then writes a value that must not leak
 * back to the scheduler. */
static void probe_cb(uv_fs_t *req) {
  probe_t *p = req->data;
  p->fired++;
  p->seen = lt_read(var);
  lt_chain_id(p->id);
  p->type = req->fs_type;
  p->data = req->data;
  lt_write(var, -7);
}

/* Does the record table still hold a registration for req? */
static int registered(const void *key) {
  uvw__loop_t *L = uvw__loop_find(&loop);
  return L != NULL && uvw__reg_find(L, key, UVW__SLOT_MAIN) != NULL;
}

/* ---- every wrapper, one step each ------------------------------------------- */

/* State shared by the steps (the temp directory and what earlier steps made). */
static struct {
  char dir[256];
  char a[300], b[300], c[300], d[300], e[300], s[300], sub[300], tmpl[300];
  char mkstemp_path[300];
  uv_file fd, fd2, tmp_fd;
  uv_dir_t *dirp;
  uv_dirent_t dirents[16];
  char rbuf[32];
} W;

#define DATA "hello world"

typedef struct {
  const char *wrapper; /* the uvw_ wrapper the step exercises, without uvw_ */
  uv_fs_type type;     /* the fs_type libuv reports for it */
  int (*submit)(uv_fs_t *req);
  void (*check)(uv_fs_t *req); /* req->result and friends, after the callback */
} step_t;

static void path_in(char *out, const char *name) { snprintf(out, 300, "%s/%s", W.dir, name); }

static void ok(uv_fs_t *req) { cr_assert_eq(req->result, 0, "%s", uv_strerror((int)req->result)); }

static int s_mkdtemp(uv_fs_t *q) { return uvw_fs_mkdtemp(&loop, q, "/tmp/uvwool-fs-XXXXXX", probe_cb); }
static void c_mkdtemp(uv_fs_t *q) {
  ok(q);
  /* libuv fills the template in req->path. */
  snprintf(W.dir, sizeof W.dir, "%s", q->path);
  cr_assert_eq(strstr(W.dir, "XXXXXX"), NULL);
  path_in(W.a, "a");
  path_in(W.b, "b");
  path_in(W.c, "c");
  path_in(W.d, "d");
  path_in(W.e, "e");
  path_in(W.s, "s");
  path_in(W.sub, "sub");
  path_in(W.tmpl, "tmpXXXXXX");
}
static int s_mkdir(uv_fs_t *q) { return uvw_fs_mkdir(&loop, q, W.sub, 0755, probe_cb); }
static int s_open(uv_fs_t *q) { return uvw_fs_open(&loop, q, W.a, O_CREAT | O_RDWR, 0644, probe_cb); }
static void c_open(uv_fs_t *q) {
  cr_assert_geq(q->result, 0, "%s", uv_strerror((int)q->result));
  W.fd = (uv_file)q->result;
}
static int s_write(uv_fs_t *q) {
  uv_buf_t b = uv_buf_init(DATA, sizeof DATA - 1);
  return uvw_fs_write(&loop, q, W.fd, &b, 1, 0, probe_cb);
}
static void c_write(uv_fs_t *q) { cr_assert_eq(q->result, (ssize_t)sizeof DATA - 1); }
static int s_read(uv_fs_t *q) {
  uv_buf_t b = uv_buf_init(W.rbuf, sizeof W.rbuf - 1);
  return uvw_fs_read(&loop, q, W.fd, &b, 1, 0, probe_cb);
}
static void c_read(uv_fs_t *q) {
  cr_assert_eq(q->result, (ssize_t)sizeof DATA - 1);
  cr_assert_str_eq(W.rbuf, DATA);
}
static int s_fstat(uv_fs_t *q) { return uvw_fs_fstat(&loop, q, W.fd, probe_cb); }
static void c_fstat(uv_fs_t *q) {
  ok(q);
  cr_assert_eq(q->statbuf.st_size, sizeof DATA - 1);
}
static int s_fsync(uv_fs_t *q) { return uvw_fs_fsync(&loop, q, W.fd, probe_cb); }
static int s_fdatasync(uv_fs_t *q) { return uvw_fs_fdatasync(&loop, q, W.fd, probe_cb); }
static int s_ftruncate(uv_fs_t *q) { return uvw_fs_ftruncate(&loop, q, W.fd, 5, probe_cb); }
static int s_open_b(uv_fs_t *q) { return uvw_fs_open(&loop, q, W.b, O_CREAT | O_WRONLY | O_TRUNC, 0644, probe_cb); }
static void c_open_b(uv_fs_t *q) {
  cr_assert_geq(q->result, 0, "%s", uv_strerror((int)q->result));
  W.fd2 = (uv_file)q->result;
}
static int s_sendfile(uv_fs_t *q) { return uvw_fs_sendfile(&loop, q, W.fd2, W.fd, 0, 5, probe_cb); }
static void c_sendfile(uv_fs_t *q) { cr_assert_eq(q->result, 5, "%s", uv_strerror((int)q->result)); }
static int s_close_b(uv_fs_t *q) { return uvw_fs_close(&loop, q, W.fd2, probe_cb); }
static int s_copyfile(uv_fs_t *q) { return uvw_fs_copyfile(&loop, q, W.a, W.c, 0, probe_cb); }
static int s_rename(uv_fs_t *q) { return uvw_fs_rename(&loop, q, W.c, W.d, probe_cb); }
static void c_rename(uv_fs_t *q) {
  ok(q);
  cr_assert_neq(access(W.c, F_OK), 0);
  cr_assert_eq(access(W.d, F_OK), 0);
}
static int s_link(uv_fs_t *q) { return uvw_fs_link(&loop, q, W.a, W.e, probe_cb); }
static int s_symlink(uv_fs_t *q) { return uvw_fs_symlink(&loop, q, "a", W.s, 0, probe_cb); }
static int s_readlink(uv_fs_t *q) { return uvw_fs_readlink(&loop, q, W.s, probe_cb); }
static void c_readlink(uv_fs_t *q) {
  ok(q);
  cr_assert_str_eq(q->ptr, "a");
}
static int s_realpath(uv_fs_t *q) { return uvw_fs_realpath(&loop, q, W.s, probe_cb); }
static void c_realpath(uv_fs_t *q) {
  ok(q);
  const char *p = q->ptr;
  size_t n = strlen(p);
  cr_assert(n > 2 && strcmp(p + n - 2, "/a") == 0, "realpath %s", p);
}
static int s_chmod(uv_fs_t *q) { return uvw_fs_chmod(&loop, q, W.a, 0600, probe_cb); }
static void c_chmod(uv_fs_t *q) {
  ok(q);
  struct stat st;
  cr_assert_eq(stat(W.a, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0600);
}
static int s_fchmod(uv_fs_t *q) { return uvw_fs_fchmod(&loop, q, W.fd, 0640, probe_cb); }
static void c_fchmod(uv_fs_t *q) {
  ok(q);
  struct stat st;
  cr_assert_eq(stat(W.a, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0640);
}
static int s_chown(uv_fs_t *q) { return uvw_fs_chown(&loop, q, W.a, getuid(), getgid(), probe_cb); }
static int s_fchown(uv_fs_t *q) { return uvw_fs_fchown(&loop, q, W.fd, getuid(), getgid(), probe_cb); }
static int s_lchown(uv_fs_t *q) { return uvw_fs_lchown(&loop, q, W.s, getuid(), getgid(), probe_cb); }
static int s_utime(uv_fs_t *q) { return uvw_fs_utime(&loop, q, W.a, 1000, 2000, probe_cb); }
static int s_futime(uv_fs_t *q) { return uvw_fs_futime(&loop, q, W.fd, 3000, 4000, probe_cb); }
static int s_lutime(uv_fs_t *q) { return uvw_fs_lutime(&loop, q, W.s, 5000, 6000, probe_cb); }
static int s_access(uv_fs_t *q) { return uvw_fs_access(&loop, q, W.a, R_OK | W_OK, probe_cb); }
static int s_stat(uv_fs_t *q) { return uvw_fs_stat(&loop, q, W.a, probe_cb); }
static void c_stat(uv_fs_t *q) {
  ok(q);
  cr_assert_eq(q->statbuf.st_size, 5, "ftruncate took effect");
  cr_assert_eq(q->statbuf.st_mtim.tv_sec, 4000, "futime was the last to set a's times");
}
static int s_lstat(uv_fs_t *q) { return uvw_fs_lstat(&loop, q, W.s, probe_cb); }
static void c_lstat(uv_fs_t *q) {
  ok(q);
  cr_assert(S_ISLNK(q->statbuf.st_mode));
  cr_assert_eq(q->statbuf.st_mtim.tv_sec, 6000, "lutime set the link's own times");
}
static int s_statfs(uv_fs_t *q) { return uvw_fs_statfs(&loop, q, W.dir, probe_cb); }
static void c_statfs(uv_fs_t *q) {
  ok(q);
  cr_assert_not_null(q->ptr);
  cr_assert_gt(((uv_statfs_t *)q->ptr)->f_bsize, 0);
}
/* The directory now holds a, b, d, e, s and sub. */
static int s_scandir(uv_fs_t *q) { return uvw_fs_scandir(&loop, q, W.dir, 0, probe_cb); }
static void c_scandir(uv_fs_t *q) {
  cr_assert_eq(q->result, 6, "%s", uv_strerror((int)q->result));
  uv_dirent_t ent;
  int n = 0;
  while (uv_fs_scandir_next(q, &ent) == 0) n++;
  cr_assert_eq(n, 6);
}
static int s_opendir(uv_fs_t *q) { return uvw_fs_opendir(&loop, q, W.dir, probe_cb); }
static void c_opendir(uv_fs_t *q) {
  ok(q);
  W.dirp = q->ptr;
  W.dirp->dirents = W.dirents;
  W.dirp->nentries = 16;
}
static int s_readdir(uv_fs_t *q) { return uvw_fs_readdir(&loop, q, W.dirp, probe_cb); }
static void c_readdir(uv_fs_t *q) { cr_assert_eq(q->result, 6, "%s", uv_strerror((int)q->result)); }
static int s_closedir(uv_fs_t *q) { return uvw_fs_closedir(&loop, q, W.dirp, probe_cb); }
static int s_mkstemp(uv_fs_t *q) { return uvw_fs_mkstemp(&loop, q, W.tmpl, probe_cb); }
static void c_mkstemp(uv_fs_t *q) {
  cr_assert_geq(q->result, 0, "%s", uv_strerror((int)q->result));
  W.tmp_fd = (uv_file)q->result;
  snprintf(W.mkstemp_path, sizeof W.mkstemp_path, "%s", q->path);
  cr_assert_eq(access(W.mkstemp_path, F_OK), 0);
}
static int s_close(uv_fs_t *q) { return uvw_fs_close(&loop, q, W.fd, probe_cb); }
static int s_unlink(uv_fs_t *q) { return uvw_fs_unlink(&loop, q, W.a, probe_cb); }
static void c_unlink(uv_fs_t *q) {
  ok(q);
  cr_assert_neq(access(W.a, F_OK), 0);
}
static int s_rmdir(uv_fs_t *q) { return uvw_fs_rmdir(&loop, q, W.sub, probe_cb); }
static void c_rmdir(uv_fs_t *q) {
  ok(q);
  cr_assert_neq(access(W.sub, F_OK), 0);
}

static const step_t steps[] = {
    {"fs_mkdtemp", UV_FS_MKDTEMP, s_mkdtemp, c_mkdtemp},
    {"fs_mkdir", UV_FS_MKDIR, s_mkdir, ok},
    {"fs_open", UV_FS_OPEN, s_open, c_open},
    {"fs_write", UV_FS_WRITE, s_write, c_write},
    {"fs_read", UV_FS_READ, s_read, c_read},
    {"fs_fstat", UV_FS_FSTAT, s_fstat, c_fstat},
    {"fs_fsync", UV_FS_FSYNC, s_fsync, ok},
    {"fs_fdatasync", UV_FS_FDATASYNC, s_fdatasync, ok},
    {"fs_ftruncate", UV_FS_FTRUNCATE, s_ftruncate, ok},
    {"fs_open", UV_FS_OPEN, s_open_b, c_open_b},
    {"fs_sendfile", UV_FS_SENDFILE, s_sendfile, c_sendfile},
    {"fs_close", UV_FS_CLOSE, s_close_b, ok},
    {"fs_copyfile", UV_FS_COPYFILE, s_copyfile, ok},
    {"fs_rename", UV_FS_RENAME, s_rename, c_rename},
    {"fs_link", UV_FS_LINK, s_link, ok},
    {"fs_symlink", UV_FS_SYMLINK, s_symlink, ok},
    {"fs_readlink", UV_FS_READLINK, s_readlink, c_readlink},
    {"fs_realpath", UV_FS_REALPATH, s_realpath, c_realpath},
    {"fs_chmod", UV_FS_CHMOD, s_chmod, c_chmod},
    {"fs_fchmod", UV_FS_FCHMOD, s_fchmod, c_fchmod},
    {"fs_chown", UV_FS_CHOWN, s_chown, ok},
    {"fs_fchown", UV_FS_FCHOWN, s_fchown, ok},
    {"fs_lchown", UV_FS_LCHOWN, s_lchown, ok},
    {"fs_utime", UV_FS_UTIME, s_utime, ok},
    {"fs_futime", UV_FS_FUTIME, s_futime, ok},
    {"fs_lutime", UV_FS_LUTIME, s_lutime, ok},
    {"fs_access", UV_FS_ACCESS, s_access, ok},
    {"fs_stat", UV_FS_STAT, s_stat, c_stat},
    {"fs_lstat", UV_FS_LSTAT, s_lstat, c_lstat},
    {"fs_statfs", UV_FS_STATFS, s_statfs, c_statfs},
    {"fs_scandir", UV_FS_SCANDIR, s_scandir, c_scandir},
    {"fs_opendir", UV_FS_OPENDIR, s_opendir, c_opendir},
    {"fs_readdir", UV_FS_READDIR, s_readdir, c_readdir},
    {"fs_closedir", UV_FS_CLOSEDIR, s_closedir, ok},
    {"fs_mkstemp", UV_FS_MKSTEMP, s_mkstemp, c_mkstemp},
    {"fs_close", UV_FS_CLOSE, s_close, ok},
    {"fs_unlink", UV_FS_UNLINK, s_unlink, c_unlink},
    {"fs_rmdir", UV_FS_RMDIR, s_rmdir, c_rmdir},
};
#define NSTEPS (sizeof steps / sizeof steps[0])

/* Remove whatever the steps left (also the rest of the directory): done
 * with the synchronous wrappers, so it doubles as a sync-mode check. */
static void remove_tree(void) {
  const char *files[] = {W.b, W.d, W.e, W.s, W.mkstemp_path};
  uv_fs_t q;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    cr_assert_eq(uvw_fs_unlink(&loop, &q, files[i], NULL), 0, "sync unlink %s", files[i]);
    uv_fs_req_cleanup(&q);
  }
  cr_assert_eq(uvw_fs_rmdir(&loop, &q, W.dir, NULL), 0, "sync rmdir");
  uv_fs_req_cleanup(&q);
}

/* Row 17 for every fs wrapper: each step is submitted with the value 1000+i
 * current, the value is changed right after submission, and the loop runs
 * the request to completion. */
Test(fs, every_wrapper_runs_its_callback_in_the_context_of_submission) {
  memset(&W, 0, sizeof W);
  W.fd = W.fd2 = W.tmp_fd = -1;
  lt_write(var, 1);
  lt_chain_id(scheduler_id);
  cr_assert_neq(scheduler_id[0], '\0', "the scheduler's chain is armed");
  for (size_t i = 0; i < NSTEPS; i++) {
    const step_t *s = &steps[i];
    probe_t p = {0};
    uv_fs_t req;
    req.data = &p;
    lt_write(var, 1000 + (long)i);
    int rc = s->submit(&req);
    cr_assert_eq(rc, 0, "step %zu (%s) submit: %s", i, s->wrapper, uv_strerror(rc));
    lt_write(var, 2000 + (long)i); /* after submission: not seen */
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(p.fired, 1, "step %zu (%s): callback ran once", i, s->wrapper);
    cr_assert_eq(p.type, s->type, "step %zu (%s): the request was the expected one", i, s->wrapper);
    cr_assert_eq(p.seen, 1000 + (long)i, "step %zu (%s): the value current at submission", i, s->wrapper);
    cr_assert_str_eq(p.id, scheduler_id, "step %zu (%s): the scheduler's chain", i, s->wrapper);
    cr_assert_eq(lt_read(var), 2000 + (long)i, "step %zu (%s): the callback's write did not leak", i, s->wrapper);
    cr_assert_eq(p.data, &p, "step %zu (%s): req->data is the user's", i, s->wrapper);
    cr_assert_not(registered(&req), "step %zu (%s): the capture was consumed", i, s->wrapper);
    s->check(&req);
    uv_fs_req_cleanup(&req);
  }
  uv_fs_t close_req;
  cr_assert_eq(uvw_fs_close(&loop, &close_req, W.tmp_fd, NULL), 0, "sync close of the mkstemp fd");
  uv_fs_req_cleanup(&close_req);
  remove_tree();
  lt_finish(&loop);
}

/* The table above covers every fs wrapper the wrapper table lists. */
Test(fs, the_steps_cover_every_fs_wrapper) {
#define UVW_WRAPPER(family, name, kind) #family "/" #name,
  static const char *const table[] = {
#include "wrappers.def"
      UVW_WRAPPER_LIST};
#undef UVW_WRAPPER
  int nfs = 0;
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strncmp(table[i], "fs/", 3) != 0) continue;
    nfs++;
    const char *name = table[i] + 3;
    int found = 0;
    for (size_t j = 0; j < NSTEPS; j++) found |= strcmp(steps[j].wrapper, name) == 0;
    cr_assert(found, "uvw_%s has no step", name);
  }
  cr_assert_eq(nfs, 36, "libuv 1.44 has 36 uv_fs_* request functions");
}

/* ---- sync mode, failures, refusals ----------------------------------------- */

Test(fs, null_callback_runs_synchronously_and_returns_libuvs_result) {
  uv_fs_t req;
  char path[] = "/tmp/uvwool-fs-sync-XXXXXX";
  int fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  close(fd);
  lt_write(var, 3);
  int rc = uvw_fs_open(&loop, &req, path, O_RDONLY, 0, NULL);
  cr_assert_geq(rc, 0, "the file descriptor, as uv_fs_open returns it");
  cr_assert_eq(req.result, rc);
  cr_assert_not(registered(&req), "nothing captured");
  uv_fs_req_cleanup(&req);
  cr_assert_eq(uvw_fs_close(&loop, &req, rc, NULL), 0);
  uv_fs_req_cleanup(&req);
  cr_assert_eq(uvw_fs_stat(&loop, &req, path, NULL), 0);
  cr_assert_eq(req.statbuf.st_size, 0);
  uv_fs_req_cleanup(&req);
  cr_assert_eq(uvw_fs_unlink(&loop, &req, path, NULL), 0);
  uv_fs_req_cleanup(&req);
  int expect = uv_fs_open(&loop, &req, path, O_RDONLY, 0, NULL);
  uv_fs_req_cleanup(&req);
  cr_assert_eq(expect, UV_ENOENT);
  cr_assert_eq(uvw_fs_open(&loop, &req, path, O_RDONLY, 0, NULL), expect, "a failing sync request: libuv's code");
  uv_fs_req_cleanup(&req);
  cr_assert_eq(lt_read(var), 3);
  lt_finish(&loop);
}


static int opaque_seen; /* the callback saw the counted value */
static long failing_result;
static void failing_cb(uv_fs_t *req) {
  uvw_value_t *out = NULL;
  cr_assert_eq(uvw_get_or(var, NULL, &out), 0);
  opaque_seen = out != NULL && uvw_value_kind(out) == UVW_VALUE_OPAQUE;
  failing_result = req->result;
  uv_fs_req_cleanup(req);
}

/* A request libuv accepts but that fails still reports in the captured
 * context, and the capture is released after its callback (row 22). */
Test(fs, failing_request_runs_in_the_captured_context_and_releases_it) {
  uv_fs_t req;
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_fs_open(&loop, &req, "/nonexistent-uvwool/missing", O_RDONLY, 0, failing_cb), 0);
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before, "the request's capture holds the value");
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(opaque_seen, "the callback ran in the captured context");
  cr_assert_eq(failing_result, UV_ENOENT, "the error is in req->result");
  cr_assert_eq(tu_released(), before + 1, "released once the callback ran");
  cr_assert_not(registered(&req));
  lt_finish(&loop);
}

Test(fs, refused_request_returns_libuvs_code_and_keeps_nothing) {
  uv_fs_t req;
  failing_result = 0;
  char buf[4];
  uv_buf_t b = uv_buf_init(buf, sizeof buf);
  int expect = uv_fs_read(&loop, &req, 0, &b, 0, 0, failing_cb); /* nbufs 0: EINVAL */
  cr_assert_eq(expect, UV_EINVAL);
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_fs_read(&loop, &req, 0, &b, 0, 0, failing_cb), expect);
  cr_assert_eq(uvw_fs_copyfile(&loop, &req, "/a", "/b", -1, failing_cb), UV_EINVAL, "bad flags");
  lt_leave(ctx);
  cr_assert_eq(tu_released(), before + 1, "the refused requests kept no capture");
  cr_assert_not(registered(&req));
  lt_finish(&loop);
  cr_assert_eq(failing_result, 0, "no callback ran");
}

/* ---- re-registration from inside the callback ------------------------------ */

typedef struct {
  int fired;
  long seen[3];
  char path[64];
} again_t;

static void again_cb(uv_fs_t *req) {
  again_t *a = req->data;
  a->seen[a->fired] = lt_read(var);
  cr_assert_eq(req->result, 0);
  if (++a->fired == 3) {
    uv_fs_req_cleanup(req);
    return;
  }
  uv_fs_req_cleanup(req);
  req->data = a; /* cleanup leaves data alone; say so explicitly */
  lt_write(var, 10 * a->fired);
  /* The same request, resubmitted: captures this callback's context. */
  cr_assert_eq(uvw_fs_stat(req->loop, req, a->path, again_cb), 0);
  lt_write(var, 99); /* after the resubmission: not seen by it */
}

Test(fs, resubmitting_the_same_request_from_its_callback_captures_anew) {
  again_t a = {0};
  snprintf(a.path, sizeof a.path, "/");
  uv_fs_t req;
  req.data = &a;
  lt_write(var, 1);
  cr_assert_eq(uvw_fs_stat(&loop, &req, a.path, again_cb), 0);
  lt_write(var, 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a.fired, 3);
  cr_assert_eq(a.seen[0], 1);
  cr_assert_eq(a.seen[1], 10, "the resubmission captured the callback's context");
  cr_assert_eq(a.seen[2], 20);
  cr_assert_eq(lt_read(var), 2);
  cr_assert_not(registered(&req), "the last callback consumed the record");
  lt_finish(&loop);
}

/* Row 22 through a resubmission: both captures are released, each at the
 * right time. */
static size_t released_in_first_cb;
static void resubmit_counted_cb(uv_fs_t *req) {
  uv_fs_req_cleanup(req);
  if (req->data == NULL) return;
  req->data = NULL;
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_fs_stat(req->loop, req, "/", resubmit_counted_cb), 0);
  lt_leave(ctx);
  released_in_first_cb = tu_released();
}

Test(fs, resubmission_releases_both_captures) {
  uv_fs_t req;
  req.data = &req;
  size_t before = tu_released();
  uvw_context_t *ctx = lt_enter_counted(var);
  cr_assert_eq(uvw_fs_stat(&loop, &req, "/", resubmit_counted_cb), 0);
  lt_leave(ctx);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(released_in_first_cb, before, "the first capture is still entered while its callback runs");
  cr_assert_eq(tu_released(), before + 2, "both captures released after the loop ran");
  cr_assert_not(registered(&req));
  lt_finish(&loop);
}

/* A callback that frees its request (the usual heap-allocated pattern). */
static long freed_seen;
static void free_cb(uv_fs_t *req) {
  freed_seen = lt_read(var);
  uv_fs_req_cleanup(req);
  free(req);
}

Test(fs, callback_may_free_its_request) {
  uv_fs_t *req = malloc(sizeof *req);
  cr_assert_not_null(req);
  lt_write(var, 42);
  cr_assert_eq(uvw_fs_stat(&loop, req, "/", free_cb), 0);
  lt_write(var, 43);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(freed_seen, 42);
  lt_finish(&loop);
}
