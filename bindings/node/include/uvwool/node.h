/* uvwool for Node-API addons.
 *
 * An addon written against uvwool's C API (uvwool/context.h, value.h,
 * errors.h) and loaded after `require('uvwool')` calls the C core that the
 * uvwool package's addon holds: index.js loads it with RTLD_GLOBAL, so the
 * uvw_* symbols of a dependent addon resolve to that one copy (one variable
 * registry for JS and every addon). Build against this folder and
 * deps/uvwool/include (require('uvwool/gyp').include_dirs); link nothing.
 * uvwool/loop.h's wrappers work on Node's loop (napi_get_uv_event_loop):
 * called inside a scope, they capture the JS context current at the call.
 *
 * Every function here runs on the JS thread of `env` only. */
#ifndef UVWOOL_NODE_H
#define UVWOOL_NODE_H

#include <node_api.h>
#include <uvwool/context.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The JS context current at a call from JS, entered in C. */
typedef struct uvw_node_scope_s {
  uvw_context_t *ctx; /* a copy of the mirror: C writes stay in this call */
} uvw_node_scope_t;

/* Enters, on this thread, a C copy of the JS context current now (one call
 * into JS: the package's mirror of its current state, built once per
 * state). uvw_get then sees what JS set; writes made in C stay in the copy
 * and never reach JS. Returns 0, or a negative UVW_E* code with the detail
 * in uvw_last_error() and nothing entered (UVW_EINVAL: env or scope NULL, or
 * the uvwool package was not loaded in this env). Pair with
 * uvw_node_scope_close, innermost first. */
int uvw_node_scope_open(napi_env env, uvw_node_scope_t *scope);
/* Leaves and releases the scope's context. 0, or UVW_ENOTENTERED when the
 * scope is not the innermost entered context (nothing changes). */
int uvw_node_scope_close(uvw_node_scope_t *scope);

/* A JS function to call back later from a libuv callback, in the context
 * current at registration. Creating it runs napi_async_init (one async
 * context per registration: AsyncLocalStorage stores, uvwool's included,
 * come back on every Node line) and copies the C context current now. */
typedef struct uvw_node_callback_s uvw_node_callback_t;

/* At registration, on the JS thread, inside the native function JS called
 * (after uvw_node_scope_open, to capture the JS context in C too). `fn` is
 * borrowed (the callback holds a strong reference), `name` names the async
 * resource (async_hooks type). Returns 0 and a new callback in *out, or
 * UVW_EINVAL (NULL argument, fn not a function), UVW_ENOMEM. */
int uvw_node_callback_new(napi_env env, napi_value fn, const char *name, uvw_node_callback_t **out);
/* From a libuv callback on the JS thread (Node's loop): enters the C context
 * captured at registration, calls fn through napi_make_callback with the
 * registration's async context, and leaves. `result` (may be NULL) gets
 * fn's return value, or NULL when fn threw: the exception goes to Node's
 * uncaught-exception path, as for any callback from the loop. Returns 0
 * once fn was called (or threw), UVW_EINVAL for a NULL callback, UVW_ENOMEM.
 * The callback may be called again (multi-shot: each call starts from the
 * context captured at registration). */
int uvw_node_callback_call(uvw_node_callback_t *cb, size_t argc, const napi_value *argv, napi_value *result);
/* The C context captured at registration (borrowed, valid until
 * uvw_node_callback_free), for the addon's own C work when the event fires:
 * enter a copy of it (uvw_context_copy) so what C writes stays in that
 * event. NULL for a NULL callback. */
uvw_context_t *uvw_node_callback_context(const uvw_node_callback_t *cb);
/* Ends the registration: napi_async_destroy exactly once, releases fn and
 * the captured context. NULL-safe; on the JS thread. */
void uvw_node_callback_free(uvw_node_callback_t *cb);

#ifdef __cplusplus
}
#endif
#endif
