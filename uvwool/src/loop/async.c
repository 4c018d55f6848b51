/* uv_async_init: the callback runs in the context captured at init, whoever
 * sends (sends coalesce, so they cannot carry a context: use
 * uvw_loop_call_soon_threadsafe for that). Released at close. */
#include "loop_internal.h"

static void async_trampoline(uv_async_t *handle) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_async_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  uvw__reg_begin(&f, L, r);
  ((uv_async_cb)r->cb)(handle);
  uvw__reg_end(&f, L, r);
}

int uvw_async_init(uv_loop_t *loop, uv_async_t *async, uv_async_cb async_cb) {
  if (async_cb == NULL) return uv_async_init(loop, async, async_cb);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(loop, async, UVW__SLOT_MAIN, (uvw__fn)async_cb, NULL, &L, &r);
  if (rc != 0) return rc;
  return uvw__registered(L, r, uv_async_init(loop, async, async_trampoline));
}
