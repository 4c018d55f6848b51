/* The persistent map behind every context: variable -> value.
 *
 * Immutable once shared, refcounted, O(1) snapshot (a snapshot is a reference).
 * NULL is the empty map. Small maps (the common case) are one flat
 * copy-on-write array; past UVW__MAP_FLAT_MAX entries the map becomes a HAMT
 * so set/get stay O(log32 n). Keys are opaque pointers compared by identity
 * (in practice uvw_var_t*); values are uvw_value_t* and the map holds one
 * reference on each value it stores.
 *
 * Updates go through a slot (`uvw__map_t **slot`) that owns one reference:
 * when the slot's map is referenced by nobody else it is updated in place
 * (nobody can observe it), otherwise a new map sharing structure is built and
 * the slot's reference to the old one is dropped. On UVW_ENOMEM the slot, the
 * map and every refcount are left exactly as they were.
 *
 * Values stored are never NULL (callers store sentinels, not NULL), so a NULL
 * from uvw__map_get always means "absent". */
#ifndef UVW_CORE_MAP_H
#define UVW_CORE_MAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "value.h"

typedef struct map_entry_s {
  const void *key;
  uvw_value_t *value;
} map_entry_t;

typedef struct hamt_node_s hamt_node_t;

/* Bytes a higher layer derived from a map's bindings alone (the wire
 * layer's encoding of them), kept with the map so an unchanged map is not
 * encoded again. One uvw__malloc block, freed with the map. */
typedef struct uvw__map_memo_s {
  uint64_t stamp; /* what else the bytes depend on, as the layer that made them defines it */
  size_t len;
  uint8_t bytes[];
} uvw__map_memo_t;

/* The layout is here, not in map.c, only so the flat lookup below inlines
 * into uvw_get: it is the hottest path of the library.
 * cap != 0: flat map, `entries` holds `size` bindings out of `cap` slots.
 * cap == 0: HAMT of `size` bindings under `root`. */
typedef struct uvw__map_s {
  atomic_uint refs;
  uint32_t cap;
  uint32_t size;
  hamt_node_t *root;
  /* NULL until set; set once while the map is shared (first setter wins),
   * dropped when the map is changed in place. */
  _Atomic(uvw__map_memo_t *) memo;
  map_entry_t entries[];
} uvw__map_t;

uvw_value_t *uvw__map_hamt_get(const uvw__map_t *m, const void *key);

/* Borrowed value bound to key, or NULL. */
static inline uvw_value_t *uvw__map_get(const uvw__map_t *m, const void *key) {
  if (m == NULL) return NULL;
  if (__builtin_expect(m->cap == 0, 0)) return uvw__map_hamt_get(m, key);
  for (uint32_t i = 0; i < m->size; i++)
    if (m->entries[i].key == key) return m->entries[i].value;
  return NULL;
}
size_t uvw__map_size(const uvw__map_t *m);
/* Bind key to value (takes a new reference on value, drops the one on a
 * replaced value). Returns 0 or UVW_ENOMEM. */
int uvw__map_set(uvw__map_t **slot, const void *key, uvw_value_t *value);
/* uvw__map_set that hands the caller the reference the map held on the
 * replaced value (*old_out, NULL when key was unbound) instead of dropping it. */
int uvw__map_swap(uvw__map_t **slot, const void *key, uvw_value_t *value, uvw_value_t **old_out);
/* Unbind key (no-op returning 0 when absent). Returns 0 or UVW_ENOMEM. */
int uvw__map_remove(uvw__map_t **slot, const void *key);
/* NULL-safe. ref returns m. Inline: every context copy and capture takes one. */
void uvw__map_destroy(uvw__map_t *m);
static inline uvw__map_t *uvw__map_ref(uvw__map_t *m) {
  if (m != NULL) atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
  return m;
}
static inline void uvw__map_unref(uvw__map_t *m) {
  if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) uvw__map_destroy(m);
}
/* The memo of m, or NULL. Valid as long as the caller holds m. */
static inline const uvw__map_memo_t *uvw__map_memo(const uvw__map_t *m) {
  return m ? atomic_load_explicit(&((uvw__map_t *)m)->memo, memory_order_acquire) : NULL;
}
/* Give m a memo (taken: kept or freed). Safe from any thread holding m. */
void uvw__map_set_memo(uvw__map_t *m, uvw__map_memo_t *memo);
/* Visit every binding once, in no particular order. The callback must not
 * modify the map. */
typedef void (*uvw__map_visit_fn)(const void *key, uvw_value_t *value, void *arg);
void uvw__map_foreach(const uvw__map_t *m, uvw__map_visit_fn fn, void *arg);
/* The 32-bit key hash the HAMT indexes by; exposed so tests can build keys
 * that collide on purpose. */
uint32_t uvw__map_hash(const void *key);

#endif
