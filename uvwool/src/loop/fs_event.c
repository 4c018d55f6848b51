/* File watching: uv_fs_event (inotify) and uv_fs_poll (stat polling), both
 * asyncio-add_reader-like (docs/semantics.md §5): one capture per start, reused by
 * every change, released by the stop or close.
 *
 * A closing handle is left to libuv untouched, capturing nothing: libuv 1.44
 * accepts both starts on a closing handle, and a capture committed after the
 * close released the handle's records would never be released. */
#include "loop_internal.h"

static void fs_event_trampoline(uv_fs_event_t *handle, const char *filename, int events, int status) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_fs_event_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__reg_begin(&f, L, r);
  ((uv_fs_event_cb)r->cb)(handle, filename, events, status);
  uvw__reg_end(&f, L, r);
}

int uvw_fs_event_start(uv_fs_event_t *handle, uv_fs_event_cb cb, const char *path, unsigned int flags) {
  if (cb == NULL || uv_is_closing((uv_handle_t *)handle)) return uv_fs_event_start(handle, cb, path, flags);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, handle, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  /* UV_EINVAL (already watching) discards only the new capture. */
  return uvw__registered(L, r, uv_fs_event_start(handle, fs_event_trampoline, path, flags));
}

int uvw_fs_event_stop(uv_fs_event_t *handle) {
  uvw__loop_t *L = uvw__loop_find(handle->loop);
  if (L) uvw__reg_stop(L, handle, UVW__SLOT_MAIN);
  return uv_fs_event_stop(handle);
}

static void fs_poll_trampoline(uv_fs_poll_t *handle, int status, const uv_stat_t *prev, const uv_stat_t *curr) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_fs_poll_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__reg_begin(&f, L, r);
  ((uv_fs_poll_cb)r->cb)(handle, status, prev, curr);
  uvw__reg_end(&f, L, r);
}

int uvw_fs_poll_start(uv_fs_poll_t *handle, uv_fs_poll_cb poll_cb, const char *path, unsigned int interval) {
  /* An active poller ignores a new start (libuv returns 0 and keeps its old
   * callback), so the wrapper keeps the old capture too. */
  if (poll_cb == NULL || uv_is_closing((uv_handle_t *)handle) || uv_is_active((uv_handle_t *)handle))
    return uv_fs_poll_start(handle, poll_cb, path, interval);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, handle, UVW__SLOT_MAIN, (uvw__fn)poll_cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_fs_poll_start(handle, fs_poll_trampoline, path, interval));
}

int uvw_fs_poll_stop(uv_fs_poll_t *handle) {
  uvw__loop_t *L = uvw__loop_find(handle->loop);
  if (L) uvw__reg_stop(L, handle, UVW__SLOT_MAIN);
  return uv_fs_poll_stop(handle);
}
