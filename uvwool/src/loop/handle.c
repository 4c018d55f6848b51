/* Handles: close (releases every capture of the handle and captures for the
 * close callback) and walk (synchronous: the context is already current). */
#include "loop_internal.h"

void uvw__handle_release(uv_handle_t *handle) {
  uvw__loop_t *L = uvw__loop_find(handle->loop);
  if (L == NULL) return;
  uvw__reg_release_key(L, handle, UVW__SLOT_MAIN);
  if (handle->type == UV_TCP || handle->type == UV_NAMED_PIPE) uvw__reg_release_key(L, handle, UVW__SLOT_LISTEN);
}

void uvw__close_trampoline(uv_handle_t *handle) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_CLOSE, &L, "uv_close_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_close_cb)r->cb)(handle);
  uvw__reg_end(&f, L, r);
}

void uvw_close(uv_handle_t *handle, uv_close_cb close_cb) {
  uvw__handle_release(handle);
  uvw__loop_t *L;
  uvw__reg_t *r;
  /* Without memory for the capture the close still happens, uncaptured:
   * uv_close cannot fail, and neither may its wrapper. */
  if (close_cb == NULL || uvw__register(handle->loop, handle, UVW__SLOT_CLOSE, (uvw__fn)close_cb, NULL, &L, &r) != 0) {
    uv_close(handle, close_cb);
    return;
  }
  uv_close(handle, uvw__close_trampoline);
  uvw__reg_commit(L, r);
}

/* The alloc callback of reads and udp receives: it runs in the same capture
 * as the read callback it precedes (the record's second callback). */
void uvw__alloc_trampoline(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_alloc_cb");
  if (r == NULL) {
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to the read callback */
    return;
  }
  uvw__frame_t f;
  uvw__reg_begin(&f, L, r);
  ((uv_alloc_cb)r->cb2)(handle, suggested_size, buf);
  uvw__reg_end(&f, L, r);
}

void uvw_walk(uv_loop_t *loop, uv_walk_cb walk_cb, void *arg) { uv_walk(loop, walk_cb, arg); }
