/* Handles: close (captures for the close callback; the handle's other
 * captures are released when it has run) and walk (synchronous: the context is already current). */
#include "loop_internal.h"

void uvw__handle_stop(uv_handle_t *handle) {
  uvw__loop_t *L = uvw__loop_find(handle->loop);
  if (L == NULL) return;
  uvw__reg_stop(L, handle, UVW__SLOT_MAIN);
  if (handle->type == UV_TCP || handle->type == UV_NAMED_PIPE) uvw__reg_stop(L, handle, UVW__SLOT_LISTEN);
}

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
  /* libuv delivers nothing to a handle after its close callback: its other
   * records go now, before the callback may free the handle. */
  uvw__handle_release(handle);
  if (r->cb == NULL) {
    uvw__reg_release(L, r);
    return;
  }
  uvw__frame_t f;
  uvw__oneshot_begin(&f, L, r);
  ((uv_close_cb)r->cb)(handle);
  uvw__reg_end(&f, L, r);
}

/* libuv still delivers some callbacks after uv_close (the rest of a recvmmsg
 * batch and its free-the-buffer call, an exit callback of a process another
 * exit callback closed): a handle's records are kept until its close
 * callback, so those reach the user's callbacks as they do without uvwool.
 * The captures themselves are released at the close, as before: the late
 * callbacks run in the context current at uv_run.
 * The close trampoline is installed whenever there is a close callback or a
 * record to release; 1 when it is, with the close record prepared in *r. 0
 * when libuv should get the caller's callback (nothing held, or no memory
 * for the record: the caller then releases the handle's records at once). */
int uvw__close_prepare(uv_handle_t *handle, uv_close_cb close_cb, uvw__loop_t **L, uvw__reg_t **r) {
  uvw__loop_t *found = uvw__loop_find(handle->loop);
  int held = found && (uvw__reg_find(found, handle, UVW__SLOT_MAIN) || uvw__reg_find(found, handle, UVW__SLOT_LISTEN));
  if (close_cb == NULL && !held) return 0;
  return uvw__register(handle->loop, handle, UVW__SLOT_CLOSE, (uvw__fn)close_cb, NULL, L, r) == 0;
}

void uvw_close(uv_handle_t *handle, uv_close_cb close_cb) {
  uvw__loop_t *L;
  uvw__reg_t *r;
  /* Without memory for the capture the close still happens, uncaptured:
   * uv_close cannot fail, and neither may its wrapper. A NULL handle is
   * libuv's to judge. */
  if (handle == NULL || !uvw__close_prepare(handle, close_cb, &L, &r)) {
    if (handle) uvw__handle_release(handle);
    uv_close(handle, close_cb);
    return;
  }
  uv_close(handle, uvw__close_trampoline);
  uvw__reg_commit(L, r);
  uvw__handle_stop(handle);
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
