#include "convert.h"

#include "env.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define UVWN_SAFE 9007199254740992.0 /* 2^53 */

/* A JS value held by the core: a strong reference to a one-element array
 * holding it (Node 20 references only objects). The last C reference may
 * drop in a GC finalizer or on a pool thread: the reference is deleted on
 * the JS thread (env.c). */
static void opaque_release(void *ptr) {
  uvwn_env_release(ptr);
}

static const uvw_opaque_ops_t js_ops = {"js", opaque_release};

static uvw_value_t *fail_nomem(napi_env env) {
  napi_throw_error(env, "UVW_ENOMEM", "uvwool: out of memory");
  return NULL;
}

static uvw_value_t *from_number(napi_env env, napi_value v) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return NULL;
  int integral = isfinite(d) && trunc(d) == d && fabs(d) <= UVWN_SAFE && !(d == 0 && signbit(d));
  uvw_value_t *out = integral ? uvw_value_int((int64_t)d) : uvw_value_double(d);
  return out ? out : fail_nomem(env);
}

static uvw_value_t *from_bigint(napi_env env, napi_value v) {
  int64_t i;
  bool lossless;
  if (napi_get_value_bigint_int64(env, v, &i, &lossless) != napi_ok) return NULL;
  if (!lossless) {
    napi_throw_range_error(env, "UVW_EINVAL", "uvwool: a BigInt value must fit in a signed 64-bit integer");
    return NULL;
  }
  uvw_value_t *out = uvw_value_int(i);
  return out ? out : fail_nomem(env);
}

static uvw_value_t *from_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *buf = malloc(len + 1);
  if (buf == NULL) return fail_nomem(env);
  uvw_value_t *out = NULL;
  if (napi_get_value_string_utf8(env, v, buf, len + 1, &len) == napi_ok) {
    out = uvw_value_string(buf, len);
    if (out == NULL) fail_nomem(env);
  }
  free(buf);
  return out;
}

/* NULL without an exception: v is not a Uint8Array (nor a Buffer). */
static uvw_value_t *from_bytes(napi_env env, napi_value v, int *matched) {
  bool is_ta = false;
  *matched = 0;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return NULL;
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, NULL, NULL) != napi_ok) return NULL;
  if (type != napi_uint8_array) return NULL;
  *matched = 1;
  uvw_value_t *out = uvw_value_bytes(len ? data : NULL, len);
  return out ? out : fail_nomem(env);
}

static uvw_value_t *from_opaque(napi_env env, napi_value v) {
  napi_value holder;
  uvwn_opaque_t *o = calloc(1, sizeof *o);
  if (o == NULL) return fail_nomem(env);
  o->owner = uvwn_env(env);
  if (napi_create_array_with_length(env, 1, &holder) != napi_ok || napi_set_element(env, holder, 0, v) != napi_ok ||
      napi_create_reference(env, holder, 1, &o->ref) != napi_ok) {
    free(o);
    return NULL;
  }
  uvwn_env_hold(o->owner); /* given back by the release, also on failure below */
  uvw_value_t *out = uvw_value_opaque(o, &js_ops); /* releases o on failure */
  return out ? out : fail_nomem(env);
}

uvw_value_t *uvwn_to_value(napi_env env, napi_value v) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  switch (t) {
  case napi_null:
    return uvw_value_nil();
  case napi_boolean: {
    bool b;
    return napi_get_value_bool(env, v, &b) == napi_ok ? uvw_value_bool(b) : NULL;
  }
  case napi_number:
    return from_number(env, v);
  case napi_bigint:
    return from_bigint(env, v);
  case napi_string:
    return from_string(env, v);
  default: {
    int matched;
    uvw_value_t *bytes = from_bytes(env, v, &matched);
    return matched ? bytes : from_opaque(env, v);
  }
  }
}

static napi_value from_int(napi_env env, int64_t i) {
  napi_value out = NULL;
  if (i >= -(int64_t)UVWN_SAFE && i <= (int64_t)UVWN_SAFE) napi_create_int64(env, i, &out);
  else napi_create_bigint_int64(env, i, &out);
  return out;
}

static napi_value from_opaque_value(napi_env env, const uvw_value_t *v) {
  napi_value out = NULL, holder;
  if (uvw_value_opaque_ops(v) != &js_ops) {
    /* A C addon's opaque value: JS sees a token object naming its type. */
    napi_value name;
    const char *type = uvw_value_opaque_ops(v)->type_name;
    if (napi_create_object(env, &out) == napi_ok &&
        napi_create_string_utf8(env, type ? type : "", NAPI_AUTO_LENGTH, &name) == napi_ok)
      napi_set_named_property(env, out, "opaqueType", name);
    return out;
  }
  const uvwn_opaque_t *o = uvw_value_as_opaque(v);
  if (napi_get_reference_value(env, o->ref, &holder) == napi_ok) napi_get_element(env, holder, 0, &out);
  return out;
}

napi_value uvwn_from_value(napi_env env, const uvw_value_t *v) {
  napi_value out = NULL;
  switch (uvw_value_kind(v)) {
  case UVW_VALUE_NIL:
    napi_get_null(env, &out);
    break;
  case UVW_VALUE_BOOL:
    napi_get_boolean(env, uvw_value_as_bool(v), &out);
    break;
  case UVW_VALUE_INT:
    return from_int(env, uvw_value_as_int(v));
  case UVW_VALUE_DOUBLE:
    napi_create_double(env, uvw_value_as_double(v), &out);
    break;
  case UVW_VALUE_STRING:
    napi_create_string_utf8(env, uvw_value_as_string(v), uvw_value_len(v), &out);
    break;
  case UVW_VALUE_BYTES:
    napi_create_buffer_copy(env, uvw_value_len(v), uvw_value_data(v), NULL, &out);
    break;
  case UVW_VALUE_OPAQUE:
    return from_opaque_value(env, v);
  default:
    napi_get_undefined(env, &out);
    break;
  }
  return out;
}
