/* Values between JavaScript and the uvwool core (docs/node.md, "Values"). */
#ifndef UVWOOL_NODE_CONVERT_H
#define UVWOOL_NODE_CONVERT_H

#include <node_api.h>
#include <uvwool/context.h>
#include <uvwool/value.h>

/* A new uvw value for v, or NULL with a JS exception pending. Numbers that
 * are integers within +-2^53 (not -0) become int64, other numbers double,
 * BigInt int64 (RangeError outside), strings strings, Uint8Array/Buffer
 * bytes, null nil, booleans bool; anything else an opaque value holding a
 * reference to v that never crosses the wire. */
uvw_value_t *uvwn_to_value(napi_env env, napi_value v);
/* The JS value of a uvw value (borrowed), or NULL with an exception pending.
 * int64 beyond +-2^53 comes back as a BigInt, bytes as a new Buffer. */
napi_value uvwn_from_value(napi_env env, const uvw_value_t *v);

/* A JS external holding ctx (the reference is the external's: unref'd when
 * it is collected; also on failure, NULL with an exception pending). The
 * shape index.js passes back to nativeGet and the dispatch calls. */
napi_value uvwn_context_external(napi_env env, uvw_context_t *ctx);
/* A native function of the binding, and adding a table of them to the
 * exports (0, or -1 with an exception pending). */
typedef struct uvwn_fn_s {
  const char *name;
  napi_callback fn;
} uvwn_fn_t;
int uvwn_export_fns(napi_env env, napi_value exports, const uvwn_fn_t *fns, size_t n);
/* Adds dispatch.c's functions to the addon's exports. 0 or -1. */
int uvwn_dispatch_init(napi_env env, napi_value exports);
/* Adds worker.c's functions (hosting routines) to the exports. 0 or -1. */
int uvwn_worker_init(napi_env env, napi_value exports);

#endif
