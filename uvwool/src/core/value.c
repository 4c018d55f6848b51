#include "value.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

#define UVW__IMMORTAL(k) {.refs = 1, .kind = (k), .immortal = 1}

uvw_value_t uvw__missing_value = UVW__IMMORTAL(UVW_VALUE_MISSING);
static uvw_value_t undefined_value = UVW__IMMORTAL(UVW_VALUE_UNDEFINED);
static uvw_value_t nil_value = UVW__IMMORTAL(UVW_VALUE_NIL);
static uvw_value_t false_value = {.refs = 1, .kind = UVW_VALUE_BOOL, .immortal = 1, .u.b = 0};
static uvw_value_t true_value = {.refs = 1, .kind = UVW_VALUE_BOOL, .immortal = 1, .u.b = 1};

uvw_value_t *uvw_value_missing(void) { return &uvw__missing_value; }
uvw_value_t *uvw_value_undefined(void) { return &undefined_value; }
uvw_value_t *uvw_value_nil(void) { return &nil_value; }
uvw_value_t *uvw_value_bool(int b) { return b ? &true_value : &false_value; }

static uvw_value_t *value_alloc(uvw_value_kind_t kind, size_t extra) {
  uvw_value_t *v = uvw__malloc(sizeof(*v) + extra);
  if (v == NULL) {
    uvw__error_nomem("value");
    return NULL;
  }
  atomic_init(&v->refs, 1);
  v->kind = (uint8_t)kind;
  v->immortal = 0;
  v->len = 0;
  return v;
}

uvw_value_t *uvw_value_int(int64_t i) {
  uvw_value_t *v = value_alloc(UVW_VALUE_INT, 0);
  if (v) v->u.i = i;
  return v;
}

uvw_value_t *uvw_value_double(double d) {
  uvw_value_t *v = value_alloc(UVW_VALUE_DOUBLE, 0);
  if (v) v->u.d = d;
  return v;
}

static uvw_value_t *value_blob(uvw_value_kind_t kind, const void *p, size_t len) {
  if (p == NULL && len != 0) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "value data is NULL with length %zu", len);
    return NULL;
  }
  uvw_value_t *v = value_alloc(kind, len + 1);
  if (v == NULL) return NULL;
  if (len) memcpy(v->data, p, len);
  v->data[len] = '\0';
  v->len = len;
  return v;
}

uvw_value_t *uvw_value_string(const char *s, size_t len) {
  return value_blob(UVW_VALUE_STRING, s, len);
}

uvw_value_t *uvw_value_cstring(const char *s) {
  if (s == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "string is NULL");
    return NULL;
  }
  return value_blob(UVW_VALUE_STRING, s, strlen(s));
}

uvw_value_t *uvw_value_bytes(const void *p, size_t len) { return value_blob(UVW_VALUE_BYTES, p, len); }

uvw_value_t *uvw_value_opaque(void *ptr, const uvw_opaque_ops_t *ops) {
  if (ops == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "opaque value without ops");
    return NULL;
  }
  uvw_value_t *v = value_alloc(UVW_VALUE_OPAQUE, 0);
  if (v == NULL) {
    /* Ownership was handed over: honour it even on failure. */
    if (ops->release) ops->release(ptr);
    return NULL;
  }
  v->u.opaque.ptr = ptr;
  v->u.opaque.ops = ops;
  return v;
}

void uvw__value_destroy(uvw_value_t *v) {
  if (v->kind == UVW_VALUE_OPAQUE && v->u.opaque.ops->release) v->u.opaque.ops->release(v->u.opaque.ptr);
  uvw__free(v);
}

uvw_value_t *uvw_value_ref(uvw_value_t *v) { return uvw__value_ref(v); }
void uvw_value_unref(uvw_value_t *v) { uvw__value_unref(v); }

uvw_value_kind_t uvw_value_kind(const uvw_value_t *v) {
  return v ? (uvw_value_kind_t)v->kind : UVW_VALUE_MISSING;
}
int uvw_value_as_bool(const uvw_value_t *v) { return v && v->kind == UVW_VALUE_BOOL ? v->u.b : 0; }
int64_t uvw_value_as_int(const uvw_value_t *v) { return v && v->kind == UVW_VALUE_INT ? v->u.i : 0; }
double uvw_value_as_double(const uvw_value_t *v) {
  return v && v->kind == UVW_VALUE_DOUBLE ? v->u.d : 0.0;
}

static int is_blob(const uvw_value_t *v) {
  return v && (v->kind == UVW_VALUE_STRING || v->kind == UVW_VALUE_BYTES);
}
const char *uvw_value_as_string(const uvw_value_t *v) {
  return v && v->kind == UVW_VALUE_STRING ? v->data : NULL;
}
const void *uvw_value_data(const uvw_value_t *v) { return is_blob(v) ? v->data : NULL; }
size_t uvw_value_len(const uvw_value_t *v) { return is_blob(v) ? v->len : 0; }
void *uvw_value_as_opaque(const uvw_value_t *v) {
  return v && v->kind == UVW_VALUE_OPAQUE ? v->u.opaque.ptr : NULL;
}
const uvw_opaque_ops_t *uvw_value_opaque_ops(const uvw_value_t *v) {
  return v && v->kind == UVW_VALUE_OPAQUE ? v->u.opaque.ops : NULL;
}

int uvw__value_same(const uvw_value_t *a, const uvw_value_t *b) {
  if (a == b) return 1;
  if (a == NULL || b == NULL || a->kind != b->kind) return 0;
  if (a->kind == UVW_VALUE_DOUBLE) return memcmp(&a->u.d, &b->u.d, sizeof(a->u.d)) == 0;
  return a->kind != UVW_VALUE_OPAQUE && uvw_value_equal(a, b);
}

int uvw_value_equal(const uvw_value_t *a, const uvw_value_t *b) {
  if (a == b) return 1;
  if (a == NULL || b == NULL || a->kind != b->kind) return 0;
  switch ((uvw_value_kind_t)a->kind) {
    case UVW_VALUE_BOOL: return a->u.b == b->u.b;
    case UVW_VALUE_INT: return a->u.i == b->u.i;
    case UVW_VALUE_DOUBLE: return a->u.d == b->u.d;
    case UVW_VALUE_STRING:
    case UVW_VALUE_BYTES: return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
    case UVW_VALUE_OPAQUE: return a->u.opaque.ptr == b->u.opaque.ptr && a->u.opaque.ops == b->u.opaque.ops;
    default: return 1; /* sentinels and nil: one per kind */
  }
}
