/* Timers: asyncio's call_later. One capture per start, reused by every
 * repeat; a restart (even from its own callback) captures anew, by renewing
 * the record in place when its capture already is that value. */
#include "loop_internal.h"

static void timer_trampoline(uv_timer_t *handle) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_timer_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__reg_begin(&f, L, r);
  ((uv_timer_cb)r->cb)(handle);
  uvw__reg_end(&f, L, r);
}

int uvw_timer_start(uv_timer_t *handle, uv_timer_cb cb, uint64_t timeout, uint64_t repeat) {
  /* libuv refuses a NULL cb. A closing timer it refuses too (UV_EINVAL):
   * that case is not tested here, because every restart from a timer's own
   * callback would pay for the check; the capture made for it is discarded
   * below like any refused registration's, and the handle's records stay. */
  if (cb == NULL || handle == NULL) return UVW__UV(uv_timer_start(handle, cb, timeout, repeat));
  uvw__loop_t *L = handle->loop ? uvw__loop_find(handle->loop) : NULL;
  uvw__reg_t *r = L ? uvw__reg_renewable(L, handle, UVW__SLOT_MAIN) : NULL;
  if (r != NULL) { /* the capture it holds is the one a new one would be (loop_internal.h) */
    int rc = uv_timer_start(handle, timer_trampoline, timeout, repeat);
    if (rc != 0) return UVW__UV(rc);
    uvw__reg_renew(r, (uvw__fn)cb, NULL);
    return 0;
  }
  int rc = uvw__register(handle->loop, handle, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_timer_start(handle, timer_trampoline, timeout, repeat));
}

int uvw_timer_stop(uv_timer_t *handle) {
  if (handle == NULL) return UVW__UV(uv_timer_stop(handle));
  uvw__loop_t *L = uvw__loop_find(handle->loop);
  if (L) uvw__reg_stop(L, handle, UVW__SLOT_MAIN);
  return UVW__UV(uv_timer_stop(handle));
}
