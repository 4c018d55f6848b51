/* Internal layout of values, so the map and contexts can ref/unref inline. */
#ifndef UVW_CORE_VALUE_H
#define UVW_CORE_VALUE_H

#include <stdatomic.h>
#include <stdint.h>

#include "uvwool/value.h"

struct uvw_value_s {
  atomic_uint refs;
  uint8_t kind;     /* uvw_value_kind_t */
  uint8_t immortal; /* sentinels and singletons: never counted, never freed */
  size_t len;       /* string/bytes length */
  union {
    int b;
    int64_t i;
    double d;
    struct {
      void *ptr;
      const uvw_opaque_ops_t *ops;
    } opaque;
  } u;
  char data[]; /* string/bytes payload, NUL-terminated */
};

void uvw__value_destroy(uvw_value_t *v);

/* The MISSING sentinel, for internal code that should not pay a call. */
extern uvw_value_t uvw__missing_value;

static inline uvw_value_t *uvw__value_ref(uvw_value_t *v) {
  if (v != NULL && !v->immortal) atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
  return v;
}

static inline void uvw__value_unref(uvw_value_t *v) {
  if (v == NULL || v->immortal) return;
  /* acq_rel: the thread that frees must see every write made before the
   * other threads dropped their references. */
  if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) uvw__value_destroy(v);
}

static inline int uvw__value_is_sentinel(const uvw_value_t *v) {
  return v->kind == UVW_VALUE_MISSING || v->kind == UVW_VALUE_UNDEFINED;
}

/* a and b cannot be told apart by any reader but their address: the same
 * object, or built-in values of one kind with the same bits (so 0.0 and
 * -0.0 differ, which uvw_value_equal calls equal). An opaque value is the
 * same only as itself. */
int uvw__value_same(const uvw_value_t *a, const uvw_value_t *b);

#endif
