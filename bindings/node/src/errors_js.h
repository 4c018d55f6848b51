/* uvwool's C error records as JavaScript WoolError objects (lib/errors.js
 * builds them: the addon hands over kind, code, message and fields). */
#ifndef UVWOOL_NODE_ERRORS_JS_H
#define UVWOOL_NODE_ERRORS_JS_H

#include <node_api.h>
#include <uvwool/errors.h>

/* A new WoolError (of err's class) for err, its causes as `cause`, or NULL
 * with a JS exception pending. `code` overrides err's own code when err has
 * none (a routine's error raised with code 0: the reply's status). */
napi_value uvwn_error_value(napi_env env, const uvw_error_t *err, int code);
/* Throws the calling thread's last uvwool error; returns NULL. */
napi_value uvwn_throw_last(napi_env env);

#endif
