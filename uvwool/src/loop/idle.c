/* idle / check / prepare: asyncio's call_soon for every loop iteration. One
 * capture per start, reused by every iteration.
 *
 * Starting an active watcher again is a no-op in libuv (it keeps the first
 * callback and returns 0): the wrapper leaves it to libuv without capturing,
 * so the first callback keeps its capture too. A NULL or closing handle is
 * libuv's to judge as well. */
#include "loop_internal.h"

#define UVW__LOOP_WATCHER(kind)                                                              \
  static void kind##_trampoline(uv_##kind##_t *handle) {                                     \
    uvw__loop_t *L;                                                                          \
    uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_" #kind "_cb"); \
    if (r == NULL) return;                                                                   \
    uvw__frame_t f;                                                                          \
    uvw__reg_begin(&f, L, r);                                                                \
    ((uv_##kind##_cb)r->cb)(handle);                                                         \
    uvw__reg_end(&f, L, r);                                                                  \
  }                                                                                          \
                                                                                             \
  int uvw_##kind##_start(uv_##kind##_t *handle, uv_##kind##_cb cb) {                         \
    if (cb == NULL || handle == NULL || uv_is_active((uv_handle_t *)handle) ||               \
        uv_is_closing((uv_handle_t *)handle))                                                \
      return UVW__UV(uv_##kind##_start(handle, cb));                                         \
    uvw__loop_t *L;                                                                          \
    uvw__reg_t *r;                                                                           \
    int rc = uvw__register(handle->loop, handle, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r); \
    if (rc != 0) return rc;                                                                  \
    return uvw__registered(L, r, uv_##kind##_start(handle, kind##_trampoline));              \
  }                                                                                          \
                                                                                             \
  int uvw_##kind##_stop(uv_##kind##_t *handle) {                                             \
    if (handle == NULL) return uv_##kind##_stop(handle);                                     \
    uvw__loop_t *L = uvw__loop_find(handle->loop);                                           \
    if (L) uvw__reg_stop(L, handle, UVW__SLOT_MAIN);                                         \
    return UVW__UV(uv_##kind##_stop(handle));                                                \
  }

UVW__LOOP_WATCHER(idle)
UVW__LOOP_WATCHER(check)
UVW__LOOP_WATCHER(prepare)
