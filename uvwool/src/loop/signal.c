/* Signals: asyncio's add_signal_handler (docs/semantics.md §5). signal_start is
 * multi-shot (one capture per start, reused by every delivery, released by
 * uvw_signal_stop or close); signal_start_oneshot's capture is consumed by
 * its one delivery.
 *
 * Both share slot MAIN and one trampoline, the record remembering whether it
 * is one-shot: libuv keeps a single callback per handle. A start for the
 * signal the handle already watches only swaps the callback in libuv and
 * keeps the old mode (a signal_start on a one-shot watcher still fires once),
 * so the record keeps the old mode too, and its consumption matches libuv's
 * deliveries. */
#include "loop_internal.h"

static const char oneshot_tag; /* r->extra == &oneshot_tag: a one-shot record */

static void signal_trampoline(uv_signal_t *handle, int signum) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_signal_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  if (r->extra == &oneshot_tag)
    uvw__oneshot_begin(&f, L, r);
  else
    uvw__reg_begin(&f, L, r);
  ((uv_signal_cb)r->cb)(handle, signum);
  uvw__reg_end(&f, L, r);
}

static int start(uv_signal_t *handle, uv_signal_cb cb, int signum, int oneshot) {
  int (*libuv_start)(uv_signal_t *, uv_signal_cb, int) = oneshot ? uv_signal_start_oneshot : uv_signal_start;
  /* NULL callback or closing handle (libuv asserts): libuv's answer, no capture. */
  if (cb == NULL || uv_is_closing((uv_handle_t *)handle)) return libuv_start(handle, cb, signum);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(handle->loop, handle, UVW__SLOT_MAIN, (uvw__fn)cb, NULL, &L, &r);
  if (rc != 0) return rc;
  uvw__reg_t *live = uvw__reg_find(L, handle, UVW__SLOT_MAIN);
  if (signum != 0 && signum == handle->signum && live != NULL) oneshot = live->extra == &oneshot_tag;
  r->extra = oneshot ? (void *)&oneshot_tag : NULL;
  return uvw__registered(L, r, libuv_start(handle, signal_trampoline, signum));
}

int uvw_signal_start(uv_signal_t *handle, uv_signal_cb signal_cb, int signum) {
  return start(handle, signal_cb, signum, 0);
}

int uvw_signal_start_oneshot(uv_signal_t *handle, uv_signal_cb signal_cb, int signum) {
  return start(handle, signal_cb, signum, 1);
}

int uvw_signal_stop(uv_signal_t *handle) {
  uvw__loop_t *L = uvw__loop_find(handle->loop);
  if (L) uvw__reg_stop(L, handle, UVW__SLOT_MAIN);
  return uv_signal_stop(handle);
}
