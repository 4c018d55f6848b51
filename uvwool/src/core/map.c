/* Persistent map: a flat copy-on-write array while small, a HAMT beyond.
 *
 * Ownership model shared by both representations: every map object and every
 * HAMT node holds one reference on each value it stores and on each child
 * node. "Unique" means the object is reachable only through the reference we
 * were handed (refcount 1, and every ancestor unique too), so nobody else can
 * observe it and it may be changed in place. Everything else is copied.
 *
 * Failure atomicity: every allocation an update needs happens before the
 * first visible change (value refcounts, in-place writes, frees), so an
 * UVW_ENOMEM return only has to free memory it allocated itself. */
#include "map.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "sanitizers.h"
#include "uvwool/errors.h"

/* Largest flat map; one more binding turns it into a HAMT, and a HAMT that
 * shrinks to half of it turns back into a flat map (the gap avoids
 * converting back and forth around the threshold). Chosen with
 * tests/bench/bench_map.c, which overrides it to measure each
 * representation at every size: see the numbers there. */
#ifndef UVW__MAP_FLAT_MAX
#define UVW__MAP_FLAT_MAX 16
#endif
#define UVW__MAP_FLAT_MIN_CAP 4

#define HAMT_BITS 5
#define HAMT_MASK 31u
/* Hashes are 32 bits: 7 bitmap levels (the last one uses 2 bits), then
 * collision nodes hold keys whose whole hash is equal. */
#define HAMT_HASH_BITS 32

/* A HAMT node. Bitmap nodes (depth < HAMT_HASH_BITS) keep, for each of their
 * 32 slots, either an entry (bit in datamap) or a child (bit in nodemap):
 * `count` entries in slot order, then the children in slot order (CHAMP
 * layout). Collision nodes (depth >= HAMT_HASH_BITS) hold `count` >= 2
 * entries with the same hash and no bitmaps; the depth tells them apart. */
struct hamt_node_s {
  atomic_uint refs;
  uint32_t datamap;
  uint32_t nodemap;
  uint32_t count;
  map_entry_t entries[];
};

/* ---- refcount helpers ---------------------------------------------------- */

static inline int is_unique(atomic_uint *refs) {
  /* acquire: pairs with the release half of other owners' unref so their
   * last reads of the object happen before we write to it. */
  return atomic_load_explicit(refs, memory_order_acquire) == 1;
}

static inline void count_ref(atomic_uint *refs) {
  atomic_fetch_add_explicit(refs, 1, memory_order_relaxed);
}

/* True when the caller dropped the last reference and must free. */
static inline int count_unref(atomic_uint *refs) {
  return atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) == 1;
}

/* ---- hashing --------------------------------------------------------------- */

/* Keys are pointers: their low bits are alignment zeros and nearby objects
 * differ in few bits, so mix all of them (murmur3 fmix64) before taking 32. */
static inline uint32_t map_hash(const void *key) {
  uint64_t h = (uint64_t)(uintptr_t)key;
  h ^= h >> 33;
  h *= UINT64_C(0xff51afd7ed558ccd);
  h ^= h >> 33;
  h *= UINT64_C(0xc4ceb9fe1a85ec53);
  h ^= h >> 33;
  return (uint32_t)h;
}

uint32_t uvw__map_hash(const void *key) { return map_hash(key); }

/* Rebinds an entry this map or node owns. */
static void entry_rebind(map_entry_t *e, uvw_value_t *value) {
  uvw__value_ref(value); /* first: value may be the one it replaces */
  uvw__value_unref(e->value);
  e->value = value;
}

/* ---- HAMT nodes -------------------------------------------------------------- */

/* Without -mpopcnt, __builtin_popcount is a libgcc call (it doubled HAMT
 * lookups in the bench); the SWAR count is a handful of inline ALU ops. */
static inline uint32_t popcount32(uint32_t x) {
#ifdef __POPCNT__
  return (uint32_t)__builtin_popcount(x);
#else
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  return (((x + (x >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24;
#endif
}

static inline uint32_t hash_bit(uint32_t hash, unsigned shift) {
  return 1u << ((hash >> shift) & HAMT_MASK);
}

/* Index of `bit` among the set bits of `map` below it. */
static inline uint32_t bit_index(uint32_t map, uint32_t bit) { return popcount32(map & (bit - 1)); }

static inline uint32_t node_nchildren(const hamt_node_t *n) { return popcount32(n->nodemap); }

static inline hamt_node_t **node_children(const hamt_node_t *n) {
  return (hamt_node_t **)(void *)((char *)(uintptr_t)n + sizeof(*n) + n->count * sizeof(map_entry_t));
}

/* A node with room for `count` entries and `nchildren` children, refs 1,
 * contents uninitialised. */
static hamt_node_t *node_alloc(uint32_t count, uint32_t nchildren) {
  hamt_node_t *n =
      uvw__malloc(sizeof(*n) + count * sizeof(map_entry_t) + nchildren * sizeof(hamt_node_t *));
  if (n == NULL) return NULL;
  atomic_init(&n->refs, 1);
  n->datamap = 0;
  n->nodemap = 0;
  n->count = count;
  return n;
}

static void node_unref(hamt_node_t *n);

/* Drops the references a node holds, then frees it. */
static void node_destroy(hamt_node_t *n) {
  for (uint32_t i = 0; i < n->count; i++) uvw__value_unref(n->entries[i].value);
  hamt_node_t **children = node_children(n);
  for (uint32_t i = 0, nc = node_nchildren(n); i < nc; i++) node_unref(children[i]);
  uvw__free(n);
}

static void node_unref(hamt_node_t *n) {
  if (count_unref(&n->refs)) node_destroy(n);
}

/* Gives a copy of the node's contents references of its own: used before
 * replacing a shared node by a modified copy, after which the update proceeds
 * as if the references had been moved from the old node. */
static void node_ref_items(const hamt_node_t *n) {
  for (uint32_t i = 0; i < n->count; i++) uvw__value_ref(n->entries[i].value);
  hamt_node_t **children = node_children(n);
  for (uint32_t i = 0, nc = node_nchildren(n); i < nc; i++) count_ref(&children[i]->refs);
}

/* Hands the contents of `old` (already copied into a new node) over to the
 * new node: a unique old node gives its references and its memory goes; a
 * shared one stays as it was and the copy takes references of its own. */
static void node_hand_over(hamt_node_t *old, int unique) {
  if (unique)
    uvw__free(old);
  else
    node_ref_items(old);
}

/* Frees a chain built by node_pair that was never committed. */
static void node_free_raw(hamt_node_t *n, unsigned shift) {
  while (n != NULL) {
    hamt_node_t *next = shift < HAMT_HASH_BITS && n->nodemap ? node_children(n)[0] : NULL;
    uvw__free(n);
    n = next;
    shift += HAMT_BITS;
  }
}

/* A subtree holding two distinct keys at depth `shift`; takes no value
 * reference (the caller does once the whole update is allocated). */
static hamt_node_t *node_pair(unsigned shift, map_entry_t a, uint32_t ha, map_entry_t b, uint32_t hb) {
  if (shift >= HAMT_HASH_BITS) {
    hamt_node_t *n = node_alloc(2, 0);
    if (n == NULL) return NULL;
    n->entries[0] = a;
    n->entries[1] = b;
    return n;
  }
  uint32_t bita = hash_bit(ha, shift), bitb = hash_bit(hb, shift);
  if (bita == bitb) {
    hamt_node_t *child = node_pair(shift + HAMT_BITS, a, ha, b, hb);
    if (child == NULL) return NULL;
    hamt_node_t *n = node_alloc(0, 1);
    if (n == NULL) {
      node_free_raw(child, shift + HAMT_BITS);
      return NULL;
    }
    n->nodemap = bita;
    node_children(n)[0] = child;
    return n;
  }
  hamt_node_t *n = node_alloc(2, 0);
  if (n == NULL) return NULL;
  n->datamap = bita | bitb;
  n->entries[bita < bitb ? 0 : 1] = a;
  n->entries[bita < bitb ? 1 : 0] = b;
  return n;
}

/* New node laid out like `n` with the entry at `at` removed or a blank one
 * inserted (delta -1/+1/0), and likewise for the child at `cat` (cdelta).
 * Bitmaps are copied; the caller fixes them and fills the blanks. */
static hamt_node_t *node_reshape(const hamt_node_t *n, uint32_t at, int delta, uint32_t cat,
                                 int cdelta) {
  uint32_t nc = node_nchildren(n);
  hamt_node_t *r = node_alloc(n->count + (uint32_t)delta, nc + (uint32_t)cdelta);
  if (r == NULL) return NULL;
  r->datamap = n->datamap;
  r->nodemap = n->nodemap;
  uint32_t keep = delta < 0 ? at + 1 : at; /* old entries [keep..) shift by delta */
  memcpy(r->entries, n->entries, at * sizeof(map_entry_t));
  memcpy(r->entries + at + (delta > 0), n->entries + keep, (n->count - keep) * sizeof(map_entry_t));
  hamt_node_t **oc = node_children(n), **rc = node_children(r);
  uint32_t ckeep = cdelta < 0 ? cat + 1 : cat;
  memcpy(rc, oc, cat * sizeof(*oc));
  memcpy(rc + cat + (cdelta > 0), oc + ckeep, (nc - ckeep) * sizeof(*oc));
  return r;
}

/* ---- HAMT lookup ------------------------------------------------------------ */

/* Inlined into uvw__map_hamt_get: a get of a large map pays one call, not two. */
static inline __attribute__((always_inline)) const map_entry_t *hamt_find(const hamt_node_t *n, const void *key) {
  uint32_t hash = map_hash(key);
  for (unsigned shift = 0; shift < HAMT_HASH_BITS; shift += HAMT_BITS) {
    uint32_t bit = hash_bit(hash, shift);
    if (n->datamap & bit) {
      const map_entry_t *e = &n->entries[bit_index(n->datamap, bit)];
      return e->key == key ? e : NULL;
    }
    if (!(n->nodemap & bit)) return NULL;
    n = node_children(n)[bit_index(n->nodemap, bit)];
  }
  for (uint32_t i = 0; i < n->count; i++)
    if (n->entries[i].key == key) return &n->entries[i];
  return NULL;
}

/* ---- HAMT insertion ------------------------------------------------------------
 *
 * hamt_set(n, ...) binds key in the subtree n. On success *out is the result:
 * when `unique`, n was consumed (changed in place, *out == n, or moved into
 * a new node and freed); otherwise n is untouched and *out is a new node
 * owning references of its own. On failure nothing changed. */

static int hamt_set(hamt_node_t *n, unsigned shift, uint32_t hash, const void *key,
                    uvw_value_t *value, int unique, hamt_node_t **out, int *added);

/* Rebinds the existing entry i of n. */
static int node_set_value(hamt_node_t *n, uint32_t i, uvw_value_t *value, int unique,
                          hamt_node_t **out) {
  hamt_node_t *r = n;
  if (!unique) {
    r = node_reshape(n, i, 0, 0, 0);
    if (r == NULL) return UVW_ENOMEM;
    node_ref_items(n);
  }
  entry_rebind(&r->entries[i], value);
  *out = r;
  return 0;
}

/* Adds a new entry at index i (slot `bit`, 0 for collision nodes). */
static int node_add_entry(hamt_node_t *n, uint32_t i, uint32_t bit, const void *key,
                          uvw_value_t *value, int unique, hamt_node_t **out) {
  hamt_node_t *r = node_reshape(n, i, 1, 0, 0);
  if (r == NULL) return UVW_ENOMEM;
  node_hand_over(n, unique);
  r->datamap |= bit;
  r->entries[i] = (map_entry_t){key, uvw__value_ref(value)};
  *out = r;
  return 0;
}

/* Slot `bit` holds an entry with another key: push both one level down. */
static int node_split_entry(hamt_node_t *n, unsigned shift, uint32_t bit, uint32_t hash,
                            const void *key, uvw_value_t *value, int unique, hamt_node_t **out) {
  uint32_t i = bit_index(n->datamap, bit);
  map_entry_t old = n->entries[i];
  hamt_node_t *sub =
      node_pair(shift + HAMT_BITS, old, map_hash(old.key), (map_entry_t){key, value}, hash);
  if (sub == NULL) return UVW_ENOMEM;
  hamt_node_t *r = node_reshape(n, i, -1, bit_index(n->nodemap, bit), 1);
  if (r == NULL) {
    node_free_raw(sub, shift + HAMT_BITS);
    return UVW_ENOMEM;
  }
  /* The old entry's reference moves into sub with it. */
  node_hand_over(n, unique);
  uvw__value_ref(value);
  r->datamap &= ~bit;
  r->nodemap |= bit;
  node_children(r)[bit_index(r->nodemap, bit)] = sub;
  *out = r;
  return 0;
}

/* Replaces child ci of n by `child` (the updated version of the old one). */
static int node_replace_child(hamt_node_t *n, uint32_t ci, hamt_node_t *child, int unique,
                              int child_consumed, hamt_node_t **out) {
  hamt_node_t **children = node_children(n);
  hamt_node_t *old = children[ci];
  if (child == old) {
    *out = n;
    return 0;
  }
  hamt_node_t *r = n;
  if (!unique) {
    r = node_reshape(n, 0, 0, 0, 0);
    if (r == NULL) return UVW_ENOMEM;
    node_ref_items(n);
    children = node_children(r);
  }
  children[ci] = child;
  if (!child_consumed) node_unref(old);
  *out = r;
  return 0;
}

static int hamt_set_collision(hamt_node_t *n, const void *key, uvw_value_t *value, int unique,
                              hamt_node_t **out, int *added) {
  for (uint32_t i = 0; i < n->count; i++)
    if (n->entries[i].key == key) return node_set_value(n, i, value, unique, out);
  *added = 1;
  return node_add_entry(n, n->count, 0, key, value, unique, out);
}

static int hamt_set(hamt_node_t *n, unsigned shift, uint32_t hash, const void *key,
                    uvw_value_t *value, int unique, hamt_node_t **out, int *added) {
  if (shift >= HAMT_HASH_BITS) return hamt_set_collision(n, key, value, unique, out, added);
  uint32_t bit = hash_bit(hash, shift);
  if (n->datamap & bit) {
    uint32_t i = bit_index(n->datamap, bit);
    if (n->entries[i].key == key) return node_set_value(n, i, value, unique, out);
    *added = 1;
    return node_split_entry(n, shift, bit, hash, key, value, unique, out);
  }
  if (n->nodemap & bit) {
    uint32_t ci = bit_index(n->nodemap, bit);
    hamt_node_t *child = node_children(n)[ci], *updated;
    int child_unique = unique && is_unique(&child->refs);
    int rc = hamt_set(child, shift + HAMT_BITS, hash, key, value, child_unique, &updated, added);
    if (rc != 0) return rc;
    /* A shared n copies itself after the child was rebuilt; if that copy
     * fails, dropping the rebuilt child restores every count. */
    rc = node_replace_child(n, ci, updated, unique, child_unique, out);
    if (rc != 0) node_unref(updated);
    return rc;
  }
  *added = 1;
  return node_add_entry(n, bit_index(n->datamap, bit), bit, key, value, unique, out);
}

/* ---- HAMT removal -----------------------------------------------------------
 *
 * hamt_remove(n, ...) unbinds key in the subtree n (never the root's
 * last binding: the map turns flat well before). Results:
 *   REMOVE_ABSENT   key not there, nothing changed;
 *   REMOVE_NODE     *out as for hamt_set;
 *   REMOVE_COLLAPSE n (not the root) would keep a single entry, *left, which
 *                   points into n: n is untouched and the parent inlines
 *                   *left in place of n, then drops n. */

enum { REMOVE_ABSENT, REMOVE_NODE, REMOVE_COLLAPSE, REMOVE_NOMEM };

static int hamt_remove(hamt_node_t *n, unsigned shift, uint32_t hash, const void *key, int unique,
                       hamt_node_t **out, const map_entry_t **left);

/* Removes entry i (slot `bit`, 0 for collision nodes). */
static int node_del_entry(hamt_node_t *n, uint32_t i, uint32_t bit, int unique, hamt_node_t **out) {
  uvw_value_t *gone = n->entries[i].value;
  hamt_node_t *r = n;
  if (unique) {
    /* Shrinking in place needs no allocation; the tail slack is harmless. */
    hamt_node_t **oc = node_children(n);
    memmove(n->entries + i, n->entries + i + 1, (n->count - i - 1) * sizeof(map_entry_t));
    n->count--;
    memmove(node_children(n), oc, node_nchildren(n) * sizeof(*oc));
  } else {
    r = node_reshape(n, i, -1, 0, 0);
    if (r == NULL) return REMOVE_NOMEM;
    node_ref_items(n);
  }
  r->datamap &= ~bit;
  uvw__value_unref(gone);
  *out = r;
  return REMOVE_NODE;
}

/* Child ci (slot `bit`) collapsed to `left`: put that entry in its place. */
static int node_inline_child(hamt_node_t *n, uint32_t ci, uint32_t bit, const map_entry_t *left,
                             int unique, hamt_node_t **out) {
  hamt_node_t *child = node_children(n)[ci];
  uint32_t i = bit_index(n->datamap, bit);
  hamt_node_t *r = node_reshape(n, i, 1, ci, -1);
  if (r == NULL) return REMOVE_NOMEM;
  node_hand_over(n, unique);
  r->datamap |= bit;
  r->nodemap &= ~bit;
  r->entries[i] = (map_entry_t){left->key, uvw__value_ref(left->value)};
  node_unref(child); /* last: `left` points into it */
  *out = r;
  return REMOVE_NODE;
}

static int hamt_remove_collision(hamt_node_t *n, const void *key, int unique, hamt_node_t **out,
                                 const map_entry_t **left) {
  for (uint32_t i = 0; i < n->count; i++) {
    if (n->entries[i].key != key) continue;
    if (n->count == 2) {
      *left = &n->entries[1 - i];
      return REMOVE_COLLAPSE;
    }
    return node_del_entry(n, i, 0, unique, out);
  }
  return REMOVE_ABSENT;
}

static int hamt_remove_child(hamt_node_t *n, unsigned shift, uint32_t bit, uint32_t hash,
                             const void *key, int unique, hamt_node_t **out,
                             const map_entry_t **left) {
  uint32_t ci = bit_index(n->nodemap, bit);
  hamt_node_t *child = node_children(n)[ci], *updated = NULL;
  int child_unique = unique && is_unique(&child->refs);
  int r = hamt_remove(child, shift + HAMT_BITS, hash, key, child_unique, &updated, left);
  if (r == REMOVE_NODE) {
    if (node_replace_child(n, ci, updated, unique, child_unique, out) == 0) return REMOVE_NODE;
    node_unref(updated);
    return REMOVE_NOMEM;
  }
  if (r != REMOVE_COLLAPSE) return r;
  /* A lone child that collapses makes n collapse too (unless n is the root). */
  if (shift > 0 && n->count == 0 && node_nchildren(n) == 1) return REMOVE_COLLAPSE;
  return node_inline_child(n, ci, bit, *left, unique, out);
}

static int hamt_remove(hamt_node_t *n, unsigned shift, uint32_t hash, const void *key, int unique,
                       hamt_node_t **out, const map_entry_t **left) {
  if (shift >= HAMT_HASH_BITS) return hamt_remove_collision(n, key, unique, out, left);
  uint32_t bit = hash_bit(hash, shift);
  if (n->nodemap & bit) return hamt_remove_child(n, shift, bit, hash, key, unique, out, left);
  if (!(n->datamap & bit)) return REMOVE_ABSENT;
  uint32_t i = bit_index(n->datamap, bit);
  if (n->entries[i].key != key) return REMOVE_ABSENT;
  if (shift > 0 && n->count == 2 && node_nchildren(n) == 0) {
    *left = &n->entries[1 - i];
    return REMOVE_COLLAPSE;
  }
  return node_del_entry(n, i, bit, unique, out);
}

static void hamt_foreach(const hamt_node_t *n, unsigned shift, uvw__map_visit_fn fn, void *arg) {
  for (uint32_t i = 0; i < n->count; i++) fn(n->entries[i].key, n->entries[i].value, arg);
  if (shift >= HAMT_HASH_BITS) return;
  hamt_node_t **children = node_children(n);
  for (uint32_t i = 0, nc = node_nchildren(n); i < nc; i++)
    hamt_foreach(children[i], shift + HAMT_BITS, fn, arg);
}

/* ---- map objects ------------------------------------------------------------- */

static uvw__map_t *map_alloc_flat(uint32_t cap) {
  uvw__map_t *m = uvw__malloc(sizeof(*m) + cap * sizeof(map_entry_t));
  if (m == NULL) return NULL;
  atomic_init(&m->refs, 1);
  atomic_init(&m->memo, NULL);
  m->cap = cap;
  m->size = 0;
  m->root = NULL;
  return m;
}

static uvw__map_t *map_alloc_hamt(hamt_node_t *root, uint32_t size) {
  uvw__map_t *m = uvw__malloc(sizeof(*m));
  if (m == NULL) return NULL;
  atomic_init(&m->refs, 1);
  atomic_init(&m->memo, NULL);
  m->cap = 0;
  m->size = size;
  m->root = root;
  return m;
}

/* Capacity for a flat map of n bindings: some room to grow in place. */
static uint32_t flat_cap_for(uint32_t n) {
  uint32_t cap = UVW__MAP_FLAT_MIN_CAP;
  while (cap < n) cap *= 2;
  return cap < UVW__MAP_FLAT_MAX ? cap : UVW__MAP_FLAT_MAX;
}

static inline int flat_find(const uvw__map_t *m, const void *key) {
  for (uint32_t i = 0; i < m->size; i++)
    if (m->entries[i].key == key) return (int)i;
  return -1;
}

/* Built twice, and the loader picks one at start (an ifunc): each trie
 * level takes a population count, one instruction with POPCNT and about
 * twenty without; the x86-64 baseline this library is built for has none.
 * Not under sanitizers: their runtimes are not ready when ifunc resolvers
 * run (clang's TSan crashes), and a sanitized build is not for speed. */
#if defined(__x86_64__) && defined(__ELF__) && !defined(UVW__SANITIZED)
__attribute__((target_clones("popcnt", "default")))
#endif
uvw_value_t *uvw__map_hamt_get(const uvw__map_t *m, const void *key) {
  const map_entry_t *e = hamt_find(m->root, key);
  return e ? e->value : NULL;
}

size_t uvw__map_size(const uvw__map_t *m) { return m ? m->size : 0; }


void uvw__map_destroy(uvw__map_t *m) {
  uvw__free(atomic_load_explicit(&m->memo, memory_order_relaxed));
  if (m->cap == 0)
    node_unref(m->root);
  else
    for (uint32_t i = 0; i < m->size; i++) uvw__value_unref(m->entries[i].value);
  uvw__free(m);
}


/* Replaces the slot's map by a new one built from it (which took its own
 * references). */
static void slot_replace(uvw__map_t **slot, uvw__map_t *m) {
  uvw__map_unref(*slot);
  *slot = m;
}

/* A full flat map gets one more binding: it becomes a HAMT. */
static int flat_to_hamt(uvw__map_t **slot, const void *key, uvw_value_t *value) {
  const uvw__map_t *m = *slot;
  hamt_node_t *root = node_alloc(0, 0);
  if (root == NULL) return UVW_ENOMEM;
  int added = 0;
  for (uint32_t i = 0; i <= m->size; i++) {
    map_entry_t e = i < m->size ? m->entries[i] : (map_entry_t){key, value};
    if (hamt_set(root, 0, map_hash(e.key), e.key, e.value, 1, &root, &added) != 0) {
      node_unref(root); /* drops the value references taken so far */
      return UVW_ENOMEM;
    }
  }
  uvw__map_t *h = map_alloc_hamt(root, m->size + 1);
  if (h == NULL) {
    node_unref(root);
    return UVW_ENOMEM;
  }
  slot_replace(slot, h);
  return 0;
}

/* Whether the map may be changed in place (only its slot holds it), and
 * then without its memo, whose bytes would go stale. Decided once, where
 * the change is: a reader that drops its reference later cannot make a map
 * with a memo writable. Nobody else reads the memo of a unique map. */
static int writable(uvw__map_t *m) {
  if (!is_unique(&m->refs)) return 0;
  if (atomic_load_explicit(&m->memo, memory_order_relaxed) != NULL)
    uvw__free(atomic_exchange_explicit(&m->memo, NULL, memory_order_relaxed));
  return 1;
}

/* A flat copy of m's entries but the one at `skip` (-1: none), with room for
 * `cap`, taking value references. */
static uvw__map_t *flat_copy(const uvw__map_t *m, uint32_t cap, int skip) {
  uvw__map_t *r = map_alloc_flat(cap);
  if (r == NULL) return NULL;
  for (uint32_t i = 0; i < m->size; i++) {
    if ((int)i == skip) continue;
    r->entries[r->size++] = (map_entry_t){m->entries[i].key, uvw__value_ref(m->entries[i].value)};
  }
  return r;
}

static int flat_set(uvw__map_t **slot, const void *key, uvw_value_t *value) {
  uvw__map_t *m = *slot;
  int i = flat_find(m, key);
  if (i < 0 && m->size == UVW__MAP_FLAT_MAX) return flat_to_hamt(slot, key, value);
  if (!writable(m)) {
    uvw__map_t *c = flat_copy(m, flat_cap_for(m->size + (i < 0)), -1);
    if (c == NULL) return UVW_ENOMEM;
    slot_replace(slot, c);
    m = c;
  } else if (i < 0 && m->size == m->cap) {
    uint32_t cap = flat_cap_for(m->size + 1);
    uvw__map_t *g = uvw__realloc(m, sizeof(*m) + cap * sizeof(map_entry_t));
    if (g == NULL) return UVW_ENOMEM;
    g->cap = cap;
    *slot = m = g;
  }
  if (i >= 0)
    entry_rebind(&m->entries[i], value);
  else
    m->entries[m->size++] = (map_entry_t){key, uvw__value_ref(value)};
  return 0;
}

/* Installs the root an update of the slot's HAMT produced. `unique` tells
 * whether the map object is; `root_unique` whether the update consumed the
 * old root (otherwise `root` is a new node holding references of its own). */
static int hamt_commit(uvw__map_t **slot, int unique, int root_unique, hamt_node_t *root,
                       uint32_t size) {
  uvw__map_t *m = *slot;
  if (unique) {
    if (!root_unique) node_unref(m->root);
    m->root = root;
    m->size = size;
    return 0;
  }
  uvw__map_t *c = map_alloc_hamt(root, size);
  if (c == NULL) {
    node_unref(root); /* a new root: dropping it restores every count */
    return UVW_ENOMEM;
  }
  slot_replace(slot, c);
  return 0;
}

static int hamt_map_set(uvw__map_t **slot, const void *key, uvw_value_t *value) {
  uvw__map_t *m = *slot;
  int unique = writable(m);
  int root_unique = unique && is_unique(&m->root->refs);
  hamt_node_t *root;
  int added = 0;
  int rc = hamt_set(m->root, 0, map_hash(key), key, value, root_unique, &root, &added);
  if (rc != 0) return rc;
  return hamt_commit(slot, unique, root_unique, root, m->size + (uint32_t)added);
}

void uvw__map_set_memo(uvw__map_t *m, uvw__map_memo_t *memo) {
  uvw__map_memo_t *none = NULL;
  if (m == NULL || !atomic_compare_exchange_strong_explicit(&m->memo, &none, memo, memory_order_acq_rel,
                                                            memory_order_acquire))
    uvw__free(memo);
}

int uvw__map_set(uvw__map_t **slot, const void *key, uvw_value_t *value) {
  if (*slot == NULL) {
    uvw__map_t *m = map_alloc_flat(UVW__MAP_FLAT_MIN_CAP);
    if (m == NULL) return UVW_ENOMEM;
    m->entries[0] = (map_entry_t){key, uvw__value_ref(value)};
    m->size = 1;
    *slot = m;
    return 0;
  }
  return (*slot)->cap ? flat_set(slot, key, value) : hamt_map_set(slot, key, value);
}

int uvw__map_swap(uvw__map_t **slot, const void *key, uvw_value_t *value, uvw_value_t **old_out) {
  uvw__map_t *m = *slot;
  int i = m && m->cap ? flat_find(m, key) : -1;
  if (i >= 0 && writable(m)) {
    /* In place: the map's reference on the old value moves to the caller,
     * saving an increment and a decrement on the set+token path. */
    *old_out = m->entries[i].value;
    m->entries[i].value = uvw__value_ref(value);
    return 0;
  }
  uvw_value_t *old = uvw__value_ref(uvw__map_get(m, key));
  int rc = uvw__map_set(slot, key, value);
  if (rc != 0) {
    uvw__value_unref(old);
    return rc;
  }
  *old_out = old;
  return 0;
}

static int flat_remove(uvw__map_t **slot, const void *key) {
  uvw__map_t *m = *slot;
  int i = flat_find(m, key);
  if (i < 0) return 0;
  if (m->size == 1) {
    slot_replace(slot, NULL);
    return 0;
  }
  if (!writable(m)) {
    uvw__map_t *c = flat_copy(m, flat_cap_for(m->size - 1), i);
    if (c == NULL) return UVW_ENOMEM;
    slot_replace(slot, c);
    return 0;
  }
  /* Order is free: the last binding fills the hole. */
  uvw__value_unref(m->entries[i].value);
  m->entries[i] = m->entries[--m->size];
  return 0;
}

typedef struct flat_fill_s {
  uvw__map_t *m;
  const void *skip;
} flat_fill_t;

static void flat_fill(const void *key, uvw_value_t *value, void *arg) {
  flat_fill_t *f = arg;
  if (key != f->skip) f->m->entries[f->m->size++] = (map_entry_t){key, uvw__value_ref(value)};
}

/* The HAMT is down to UVW__MAP_FLAT_MAX / 2 bindings without key: go flat. */
static int hamt_to_flat(uvw__map_t **slot, const void *key) {
  uvw__map_t *m = *slot;
  uvw__map_t *f = map_alloc_flat(flat_cap_for(m->size - 1));
  if (f == NULL) return UVW_ENOMEM;
  flat_fill_t fill = {f, key};
  hamt_foreach(m->root, 0, flat_fill, &fill);
  slot_replace(slot, f);
  return 0;
}

static int hamt_map_remove(uvw__map_t **slot, const void *key) {
  uvw__map_t *m = *slot;
  if (hamt_find(m->root, key) == NULL) return 0;
  if (m->size - 1 <= UVW__MAP_FLAT_MAX / 2) return hamt_to_flat(slot, key);
  int unique = writable(m);
  int root_unique = unique && is_unique(&m->root->refs);
  hamt_node_t *root = NULL;
  const map_entry_t *left; /* unused: the root never collapses */
  if (hamt_remove(m->root, 0, map_hash(key), key, root_unique, &root, &left) == REMOVE_NOMEM)
    return UVW_ENOMEM;
  return hamt_commit(slot, unique, root_unique, root, m->size - 1);
}

int uvw__map_remove(uvw__map_t **slot, const void *key) {
  if (*slot == NULL) return 0;
  return (*slot)->cap ? flat_remove(slot, key) : hamt_map_remove(slot, key);
}

void uvw__map_foreach(const uvw__map_t *m, uvw__map_visit_fn fn, void *arg) {
  if (m == NULL) return;
  if (m->cap == 0) {
    hamt_foreach(m->root, 0, fn, arg);
    return;
  }
  for (uint32_t i = 0; i < m->size; i++) fn(m->entries[i].key, m->entries[i].value, arg);
}
