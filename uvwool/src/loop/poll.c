/* uv_poll: asyncio's add_reader / add_writer. One capture per start, reused
 * by every event, released by uvw_poll_stop or close (docs/semantics.md §5). A start
 * while polling (new events, or from the callback) captures anew, like a
 * timer restart. */
#include "loop_internal.h"

static void poll_trampoline(uv_poll_t *handle, int status, int events) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_poll_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__reg_begin(&f, L, r);
  ((uv_poll_cb)r->cb)(handle, status, events);
  uvw__reg_end(&f, L, r);
}

int uvw_poll_stop(uv_poll_t *handle) {
  uvw__loop_t *L = uvw__loop_find(handle->loop);
  if (L) uvw__reg_stop(L, handle, UVW__SLOT_MAIN);
  return uv_poll_stop(handle);
}

int uvw_poll_start(uv_poll_t *handle, int events, uv_poll_cb cb) {
  /* A closing handle goes to libuv (which asserts) with nothing captured. */
  if (uv_is_closing((uv_handle_t *)handle)) return uv_poll_start(handle, events, cb);
  /* libuv treats a start with no events as a stop (the callback is not even
   * stored): so does the wrapper, releasing the capture. */
  if (events == 0) {
    uvw__loop_t *L = uvw__loop_find(handle->loop);
    if (L) uvw__reg_stop(L, handle, UVW__SLOT_MAIN);
    return uv_poll_start(handle, events, cb);
  }
  if (cb == NULL) return uv_poll_start(handle, events, cb);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, handle, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_poll_start(handle, events, poll_trampoline));
}
