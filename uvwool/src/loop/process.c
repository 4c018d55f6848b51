/* uv_spawn: the exit callback is a done-callback (SEMANTICS 5), captured at
 * spawn, keyed by the process handle in the main slot. The capture is
 * released once the exit callback has run, or by uvw_close if the handle is
 * closed first (uvw_close releases the handle's main slot). */
#include "loop_internal.h"

static void exit_trampoline(uv_process_t *handle, int64_t exit_status, int term_signal) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_exit_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  /* One-shot: a process exits once. If the callback closes the handle with
   * uvw_close, the release is deferred to the end of the frame. */
  uvw__oneshot_begin(&f, L, r);
  ((uv_exit_cb)r->cb)(handle, exit_status, term_signal);
  uvw__reg_end(&f, L, r);
}

int uvw_spawn(uv_loop_t *loop, uv_process_t *handle, const uv_process_options_t *options) {
  /* Without an exit callback there is nothing to capture. libuv has no error
   * code for NULL options (it dereferences them): refuse rather than crash. */
  if (options == NULL) return UV_EINVAL;
  if (options->exit_cb == NULL) return uv_spawn(loop, handle, options);
  uvw__loop_t *L;
  uvw__reg_t *r;
  int rc = uvw__register(loop, handle, UVW__SLOT_MAIN, (uvw__fn)options->exit_cb, NULL, &L, &r);
  if (rc != 0) return rc;
  /* The caller's options are const: libuv gets a copy with the trampoline
   * (libuv keeps no pointer to the options after uv_spawn returns). */
  uv_process_options_t opts = *options;
  opts.exit_cb = exit_trampoline;
  return uvw__registered(L, r, uv_spawn(loop, handle, &opts));
}
