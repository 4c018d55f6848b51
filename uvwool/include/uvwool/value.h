/* uvwool values: refcounted, immutable, thread-safe to share.
 *
 * Ownership: a function documented "new reference" hands the caller one
 * reference to drop with uvw_value_unref; "borrowed" means the caller must
 * take uvw_value_ref to keep it. Functions that store a value take their own
 * reference: the caller keeps its own. */
#ifndef UVWOOL_VALUE_H
#define UVWOOL_VALUE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum uvw_value_kind_e {
  UVW_VALUE_MISSING = 0, /* sentinel: no binding at all */
  UVW_VALUE_UNDEFINED,   /* sentinel: explicit "reset to no value" */
  UVW_VALUE_NIL,
  UVW_VALUE_BOOL,
  UVW_VALUE_INT,         /* int64 */
  UVW_VALUE_DOUBLE,
  UVW_VALUE_STRING,      /* UTF-8 expected, length-counted, NUL-terminated copy */
  UVW_VALUE_BYTES,
  UVW_VALUE_OPAQUE       /* user pointer with user ops */
} uvw_value_kind_t;

typedef struct uvw_value_s uvw_value_t;

/* Operations of an opaque value's type. The struct must outlive every value
 * made with it (a static is the usual choice). `release` runs once, when the
 * last reference goes, on whichever thread drops it; may be NULL. The wire
 * layer adds codec slots through a registry keyed by `type_name`. */
typedef void (*uvw_opaque_release_cb)(void *ptr);
typedef struct uvw_opaque_ops_s {
  const char *type_name;
  uvw_opaque_release_cb release;
} uvw_opaque_ops_t;

/* Sentinels: immortal, ref/unref are no-ops on them. Borrowed. */
uvw_value_t *uvw_value_missing(void);
uvw_value_t *uvw_value_undefined(void);

/* Constructors: new reference, or NULL on allocation failure (detail in
 * uvw_last_error). nil/true/false are immortal singletons. */
uvw_value_t *uvw_value_nil(void);
uvw_value_t *uvw_value_bool(int b);
uvw_value_t *uvw_value_int(int64_t i);
uvw_value_t *uvw_value_double(double d);
/* Copies len bytes (s may hold NULs); s may be NULL only when len is 0. */
uvw_value_t *uvw_value_string(const char *s, size_t len);
uvw_value_t *uvw_value_cstring(const char *s);
uvw_value_t *uvw_value_bytes(const void *p, size_t len);
/* Takes ownership of ptr: ops->release(ptr) runs when the value dies, also
 * when this call fails. ops must not be NULL. */
uvw_value_t *uvw_value_opaque(void *ptr, const uvw_opaque_ops_t *ops);

/* Returns v (for chaining). NULL-safe. */
uvw_value_t *uvw_value_ref(uvw_value_t *v);
void uvw_value_unref(uvw_value_t *v);

uvw_value_kind_t uvw_value_kind(const uvw_value_t *v);
/* Accessors return 0/0.0/NULL when the kind does not match. */
int uvw_value_as_bool(const uvw_value_t *v);
int64_t uvw_value_as_int(const uvw_value_t *v);
double uvw_value_as_double(const uvw_value_t *v);
/* String and bytes data: borrowed, valid while the value lives. */
const char *uvw_value_as_string(const uvw_value_t *v);
const void *uvw_value_data(const uvw_value_t *v);
size_t uvw_value_len(const uvw_value_t *v);
void *uvw_value_as_opaque(const uvw_value_t *v);
const uvw_opaque_ops_t *uvw_value_opaque_ops(const uvw_value_t *v);
/* Structural equality for built-in kinds, identity for opaque ones. */
int uvw_value_equal(const uvw_value_t *a, const uvw_value_t *b);

#ifdef __cplusplus
}
#endif
#endif
