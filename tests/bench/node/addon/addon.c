/* The native callback round trip for tests/bench/node/bench.js: n calls of
 * a JS function from C, through a bare napi_make_callback on one async
 * context (the floor any addon pays), or through uvw_node_callback_call of
 * one registration made in the JS context of the call (what uvwool adds:
 * entering the captured C context around each call). Both run inside one
 * native call, so the difference per call is uvwool's cost. */
#include <node_api.h>
#include <uvwool/node.h>

static napi_value fail(napi_env env, const char *what) {
  napi_throw_error(env, NULL, what);
  return NULL;
}

static int bare(napi_env env, napi_value fn, uint32_t n) {
  napi_async_context actx;
  napi_value name, recv, res;
  if (napi_create_string_utf8(env, "bench.bare", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_get_global(env, &recv) != napi_ok || napi_async_init(env, NULL, name, &actx) != napi_ok)
    return -1;
  int rc = 0;
  for (uint32_t i = 0; i < n && rc == 0; i++)
    if (napi_make_callback(env, actx, recv, fn, 0, NULL, &res) != napi_ok) rc = -1;
  napi_async_destroy(env, actx);
  return rc;
}

static int through_uvwool(napi_env env, napi_value fn, uint32_t n) {
  uvw_node_scope_t scope;
  uvw_node_callback_t *cb = NULL;
  if (uvw_node_scope_open(env, &scope) < 0) return -1;
  int rc = uvw_node_callback_new(env, fn, "bench.uvwool", &cb);
  uvw_node_scope_close(&scope);
  for (uint32_t i = 0; i < n && rc == 0; i++) rc = uvw_node_callback_call(cb, 0, NULL, NULL);
  uvw_node_callback_free(cb);
  return rc;
}

/* roundTrip(fn, n, viaUvwool) */
static napi_value round_trip(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t n;
  bool via;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_uint32(env, argv[1], &n) != napi_ok || napi_get_value_bool(env, argv[2], &via) != napi_ok)
    return fail(env, "roundTrip(fn, n, viaUvwool)");
  if ((via ? through_uvwool(env, argv[0], n) : bare(env, argv[0], n)) < 0) return fail(env, "roundTrip failed");
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value f;
  if (napi_create_function(env, "roundTrip", NAPI_AUTO_LENGTH, round_trip, NULL, &f) != napi_ok ||
      napi_set_named_property(env, exports, "roundTrip", f) != napi_ok)
    return NULL;
  return exports;
}
