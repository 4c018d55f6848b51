#include "errors_js.h"

#include "env.h"

/* A remote error's causes cross the wire with it; a chain this long is
 * someone's loop, not a cause worth a stack of objects. */
#define CAUSE_DEPTH 8

static napi_value error_value(napi_env env, uvwn_env_t *e, const uvw_error_t *err, int code, int depth) {
  napi_value factory, args[4], out, global;
  int own = uvw_error_code(err);
  const char *kind = uvw_error_kind_name(uvw_error_kind(err));
  CHECK(napi_get_reference_value(env, e->error_factory, &factory));
  CHECK(napi_create_string_utf8(env, kind ? kind : "WoolError", NAPI_AUTO_LENGTH, &args[0]));
  CHECK(napi_create_string_utf8(env, uvw_err_name(own ? own : code), NAPI_AUTO_LENGTH, &args[1]));
  CHECK(napi_create_string_utf8(env, uvw_error_message(err), NAPI_AUTO_LENGTH, &args[2]));
  CHECK(napi_create_object(env, &args[3]));
  for (size_t i = 0, n = uvw_error_field_count(err); i < n; i++) {
    napi_value v;
    CHECK(napi_create_string_utf8(env, uvw_error_field_value(err, i), NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, args[3], uvw_error_field_name(err, i), v));
  }
  CHECK(napi_get_global(env, &global));
  CHECK(napi_call_function(env, global, factory, 4, args, &out));
  const uvw_error_t *cause = uvw_error_cause(err);
  if (cause != NULL && depth < CAUSE_DEPTH) {
    napi_value c = error_value(env, e, cause, 0, depth + 1);
    if (c == NULL) return NULL;
    CHECK(napi_set_named_property(env, out, "cause", c));
  }
  return out;
}

napi_value uvwn_error_value(napi_env env, const uvw_error_t *err, int code) {
  uvwn_env_t *e = uvwn_env(env);
  if (e == NULL || e->error_factory == NULL) {
    napi_value msg, out;
    CHECK(napi_create_string_utf8(env, uvw_error_message(err), NAPI_AUTO_LENGTH, &msg));
    CHECK(napi_create_error(env, NULL, msg, &out));
    return out;
  }
  return error_value(env, e, err, code, 0);
}

napi_value uvwn_throw_last(napi_env env) {
  const uvw_error_t *err = uvw_last_error();
  if (err == NULL) {
    napi_throw_error(env, "UVW_EINVAL", "uvwool: unknown failure");
    return NULL;
  }
  napi_value out = uvwn_error_value(env, err, UVW_EINVAL);
  if (out != NULL) napi_throw(env, out);
  return NULL;
}
