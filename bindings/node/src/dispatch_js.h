/* What dispatch.c (dispatches, streams) and peer.c (connections and
 * pools as JS holds them) share. */
#ifndef UVWOOL_NODE_DISPATCH_JS_H
#define UVWOOL_NODE_DISPATCH_JS_H

#include <node_api.h>
#include <uvwool/dispatch.h>

#include "env.h"

/* Publishes a uvwool error (code, fmt with one string) and throws it; NULL. */
napi_value uvwn_fail(napi_env env, int code, const char *fmt, const char *what);
/* Calls the hook in slot with argv through napi_make_callback, from the
 * loop; a throw is reported as uncaught. */
void uvwn_call_hook(napi_env env, napi_async_context async, napi_ref slot, size_t argc, napi_value *argv);
/* Non-zero while env is this thread's live uvwool env (not torn down). */
int uvwn_js_alive(napi_env env);
/* A new UTF-8 copy of a JS string in *out (free it). 0 or -1. */
int uvwn_get_utf8(napi_env env, napi_value v, char **out);
/* The connection a dispatch goes to: the Connection's own, or the pool's
 * next. NULL with an exception pending (closed: UVW_ECONNRESET). */
uvw_conn_t *uvwn_peer_conn(napi_env env, napi_value handle);
/* Adds peer.c's functions to the exports. 0 or -1. */
int uvwn_peer_init(napi_env env, napi_value exports);

#endif
