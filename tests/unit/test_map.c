/* Tests of the persistent map (uvwool/src/core/map.c) against a naive model:
 * random operation sequences, persistence of snapshots, value refcount
 * balance, hash collisions and allocation failure injection. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"
#include "uvwool/common.h"
#include "uvwool/errors.h"
#include "value.h"

/* map.c exports its key hash for this test only (not in map.h). */

/* ---- deterministic PRNG (xorshift64*) ---------------------------------------- */

typedef struct rng_s {
  uint64_t s;
} rng_t;

static rng_t rng_new(uint64_t seed) { return (rng_t){seed * UINT64_C(0x9e3779b97f4a7c15) + 1}; }

static uint64_t rng_next(rng_t *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * UINT64_C(0x2545f4914f6cdd1d);
}

static uint32_t rng_below(rng_t *r, uint32_t n) { return (uint32_t)(rng_next(r) % n); }

/* ---- values whose release we count --------------------------------------------- */

static atomic_long released;

static void count_release(void *ptr) {
  (void)ptr;
  atomic_fetch_add(&released, 1);
}

static const uvw_opaque_ops_t counted_ops = {"test.counted", count_release};

#define NVALUES 64

typedef struct pool_s {
  uvw_value_t *v[NVALUES];
} pool_t;

static void pool_init(pool_t *p) {
  atomic_store(&released, 0);
  for (int i = 0; i < NVALUES; i++) {
    p->v[i] = uvw_value_opaque((void *)(intptr_t)(i + 1), &counted_ops);
    cr_assert_not_null(p->v[i]);
  }
}

static unsigned refs_of(const uvw_value_t *v) { return atomic_load(&((uvw_value_t *)v)->refs); }

/* Drops the pool's own references: every value must die exactly now. */
static void pool_drop_and_check(pool_t *p) {
  for (int i = 0; i < NVALUES; i++) {
    cr_assert_eq(refs_of(p->v[i]), 1, "value %d still referenced %u times after every map died", i,
                 refs_of(p->v[i]));
    uvw_value_unref(p->v[i]);
  }
  cr_assert_eq(atomic_load(&released), NVALUES, "released %ld of %d values",
               atomic_load(&released), NVALUES);
}

/* ---- keys ---------------------------------------------------------------------------
 * Keys are compared by identity and never dereferenced. Ordinary keys are
 * adjacent bytes of an array (close addresses, the hard case for a hash);
 * crafted keys have chosen hashes, built by inverting the map's hash
 * (murmur3 fmix64 truncated to 32 bits; checked against uvw__map_hash). */

static char key_space[2048];
static const void *plain_key(uint32_t i) { return &key_space[i]; }

static uint64_t mul_inverse(uint64_t x) {
  uint64_t inv = x; /* Newton: each step doubles the correct low bits */
  for (int i = 0; i < 6; i++) inv *= 2 - x * inv;
  return inv;
}

static const void *key_with_hash(uint32_t hash, uint32_t salt) {
  uint64_t h = ((uint64_t)salt << 32) | hash;
  h ^= h >> 33;
  h *= mul_inverse(UINT64_C(0xc4ceb9fe1a85ec53));
  h ^= h >> 33;
  h *= mul_inverse(UINT64_C(0xff51afd7ed558ccd));
  h ^= h >> 33;
  const void *key = (const void *)(uintptr_t)h;
  cr_assert_eq(uvw__map_hash(key), hash,
               "crafted key has hash %08x, wanted %08x: the test's inverse no longer matches map.c",
               uvw__map_hash(key), hash);
  return key;
}

/* A key universe: n plain keys, then `groups` groups of keys that share a
 * full hash (collision nodes) or differ only in its last levels. `sorted`
 * maps a key back to its index (binary search) for foreach checks. */
typedef struct keys_s {
  const void *k[2048];
  uint32_t n;
  uint32_t sorted[2048];
} keys_t;

static const keys_t *sort_keys_by; /* qsort has no context argument */

static int cmp_key_index(const void *a, const void *b) {
  uintptr_t ka = (uintptr_t)sort_keys_by->k[*(const uint32_t *)a];
  uintptr_t kb = (uintptr_t)sort_keys_by->k[*(const uint32_t *)b];
  return ka < kb ? -1 : ka > kb;
}

static void keys_make(keys_t *ks, uint32_t nplain, uint32_t groups, rng_t *r) {
  ks->n = 0;
  for (uint32_t i = 0; i < nplain; i++) ks->k[ks->n++] = plain_key(i);
  if (sizeof(void *) >= 8) { /* crafted keys need 64-bit pointers */
    for (uint32_t g = 0; g < groups; g++) {
      uint32_t h = (uint32_t)rng_next(r);
      for (uint32_t j = 0; j < 3; j++) ks->k[ks->n++] = key_with_hash(h, 1000 * g + j + 1);
      ks->k[ks->n++] = key_with_hash(h ^ (1u << 31), 1000 * g + 10); /* differs at the last level */
      ks->k[ks->n++] = key_with_hash(h ^ (1u << 26), 1000 * g + 11);
    }
  }
  for (uint32_t i = 0; i < ks->n; i++) ks->sorted[i] = i;
  sort_keys_by = ks;
  qsort(ks->sorted, ks->n, sizeof(uint32_t), cmp_key_index);
}

/* Index of key in the universe, or -1. */
static int keys_index(const keys_t *ks, const void *key) {
  uint32_t lo = 0, hi = ks->n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    uintptr_t k = (uintptr_t)ks->k[ks->sorted[mid]];
    if (k == (uintptr_t)key) return (int)ks->sorted[mid];
    if (k < (uintptr_t)key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

/* ---- the model: the value bound to each key of the universe, or NULL ---------------- */

typedef struct model_s {
  uvw_value_t *val[2048];
  uint32_t n;
} model_t;

static void model_set(model_t *m, uint32_t i, uvw_value_t *v) {
  m->n += m->val[i] == NULL;
  m->val[i] = v;
}

static void model_remove(model_t *m, uint32_t i) {
  m->n -= m->val[i] != NULL;
  m->val[i] = NULL;
}

typedef struct visit_s {
  const keys_t *ks;
  const model_t *model;
  unsigned char seen[2048];
  uint32_t count;
  int bad;
} visit_t;

static void visit(const void *key, uvw_value_t *value, void *arg) {
  visit_t *v = arg;
  int i = keys_index(v->ks, key);
  if (i < 0 || v->model->val[i] != value || v->seen[i]) {
    v->bad = 1;
    return;
  }
  v->seen[i] = 1;
  v->count++;
}

/* Compares the map with the model: size, every key of the universe, foreach. */
static void check_map(const uvw__map_t *map, const model_t *model, const keys_t *ks,
                      const char *what, uint64_t seed, int step) {
  cr_assert_eq(uvw__map_size(map), model->n, "%s: seed %llu step %d: size %zu, model %u", what,
               (unsigned long long)seed, step, uvw__map_size(map), model->n);
  for (uint32_t i = 0; i < ks->n; i++)
    cr_assert_eq(uvw__map_get(map, ks->k[i]), model->val[i], "%s: seed %llu step %d: get of key %u",
                 what, (unsigned long long)seed, step, i);
  visit_t *v = calloc(1, sizeof(*v));
  cr_assert_not_null(v);
  v->ks = ks;
  v->model = model;
  uvw__map_foreach(map, visit, v);
  cr_assert(!v->bad && v->count == model->n,
            "%s: seed %llu step %d: foreach saw %u bindings (bad=%d), model %u", what,
            (unsigned long long)seed, step, v->count, v->bad, model->n);
  free(v);
}

/* ---- property test -------------------------------------------------------------------- */

#define NSNAPS 6

typedef struct snap_s {
  uvw__map_t *map;
  model_t model;
} snap_t;

/* One random run: a growth phase, churn, then a shrink phase, with
 * snapshots taken and checked along the way. */
static void random_run(uint64_t seed, uint32_t nplain, uint32_t groups, int steps) {
  rng_t r = rng_new(seed);
  pool_t pool;
  pool_init(&pool);
  keys_t *ks = malloc(sizeof(*ks));
  model_t *model = calloc(1, sizeof(*model));
  snap_t *snaps = calloc(NSNAPS, sizeof(*snaps));
  cr_assert(ks && model && snaps);
  keys_make(ks, nplain, groups, &r);
  uvw__map_t *map = NULL;
  for (int step = 0; step < steps; step++) {
    int phase = step * 3 / steps; /* 0 grow, 1 churn, 2 shrink */
    uint32_t set_pct = phase == 0 ? 85 : phase == 1 ? 50 : 15;
    uint32_t op = rng_below(&r, 100);
    uint32_t ki = rng_below(&r, ks->n);
    const void *key = ks->k[ki];
    if (op < 4) { /* snapshot: replaces a random old one after checking it */
      snap_t *s = &snaps[rng_below(&r, NSNAPS)];
      check_map(s->map, &s->model, ks, "old snapshot", seed, step);
      uvw__map_unref(s->map);
      s->map = uvw__map_ref(map);
      s->model = *model;
    } else if (op < 4 + set_pct) {
      uvw_value_t *v = pool.v[rng_below(&r, NVALUES)];
      cr_assert_eq(uvw__map_set(&map, key, v), 0, "seed %llu step %d: set failed",
                   (unsigned long long)seed, step);
      model_set(model, ki, v);
    } else {
      cr_assert_eq(uvw__map_remove(&map, key), 0, "seed %llu step %d: remove failed",
                   (unsigned long long)seed, step);
      model_remove(model, ki);
    }
    check_map(map, model, ks, "map", seed, step);
  }
  for (int i = 0; i < NSNAPS; i++) {
    check_map(snaps[i].map, &snaps[i].model, ks, "final snapshot", seed, steps);
    uvw__map_unref(snaps[i].map);
  }
  uvw__map_unref(map);
  pool_drop_and_check(&pool);
  free(ks);
  free(model);
  free(snaps);
}

Test(map, random_small_universes) {
  /* Few keys: lots of replacement, flat maps, conversions at the edge. */
  for (uint64_t seed = 1; seed <= 60; seed++) random_run(seed, 4 + (uint32_t)seed % 40, 0, 400);
}

Test(map, random_with_collisions) {
  for (uint64_t seed = 100; seed <= 130; seed++) random_run(seed, 20 + (uint32_t)seed % 30, 6, 600);
}

Test(map, random_large) {
  /* 1600 keys and mostly sets at first: over 1000 distinct bindings. */
  uint32_t peak = 0;
  for (uint64_t seed = 200; seed <= 202; seed++) {
    rng_t r = rng_new(seed);
    pool_t pool;
    pool_init(&pool);
    keys_t *ks = malloc(sizeof(*ks));
    cr_assert_not_null(ks);
    keys_make(ks, 1600, 20, &r);
    uvw__map_t *map = NULL, *snap = NULL;
    size_t snap_size = 0;
    for (uint32_t i = 0; i < ks->n; i++) {
      cr_assert_eq(uvw__map_set(&map, ks->k[i], pool.v[i % NVALUES]), 0);
      if (i == 700) {
        snap = uvw__map_ref(map);
        snap_size = uvw__map_size(snap);
      }
    }
    if (uvw__map_size(map) > peak) peak = (uint32_t)uvw__map_size(map);
    for (uint32_t i = 0; i < ks->n; i++)
      cr_assert_eq(uvw__map_get(map, ks->k[i]), pool.v[i % NVALUES], "seed %llu key %u",
                   (unsigned long long)seed, i);
    cr_assert_eq(uvw__map_size(snap), snap_size);
    cr_assert_eq(uvw__map_get(snap, ks->k[700]), pool.v[700 % NVALUES]);
    cr_assert_null(uvw__map_get(snap, ks->k[701]));
    /* Remove everything in a random order, checking as we go. */
    for (uint32_t i = ks->n; i > 1; i--) {
      uint32_t j = rng_below(&r, i);
      const void *t = ks->k[j];
      ks->k[j] = ks->k[i - 1];
      ks->k[i - 1] = t;
    }
    for (uint32_t i = 0; i < ks->n; i++) {
      cr_assert_eq(uvw__map_remove(&map, ks->k[i]), 0);
      cr_assert_eq(uvw__map_size(map), ks->n - i - 1);
      cr_assert_null(uvw__map_get(map, ks->k[i]));
      if (i + 1 < ks->n) cr_assert_not_null(uvw__map_get(map, ks->k[i + 1]), "seed %llu", (unsigned long long)seed);
    }
    cr_assert_null(map, "an emptied map is NULL");
    cr_assert_eq(uvw__map_size(snap), snap_size, "snapshot unchanged by removals");
    uvw__map_unref(snap);
    pool_drop_and_check(&pool);
    free(ks);
  }
  cr_assert_geq(peak, 1000);
}

Test(map, random_many_keys_churn) {
  for (uint64_t seed = 300; seed <= 303; seed++) random_run(seed, 1200, 10, 2500);
}

/* ---- persistence and in-place updates ---------------------------------------------------- */

static void check_sharing(uint32_t size) {
  pool_t pool;
  pool_init(&pool);
  uvw__map_t *map = NULL;
  for (uint32_t i = 0; i < size; i++) cr_assert_eq(uvw__map_set(&map, plain_key(i), pool.v[0]), 0);
  uvw_value_t *a = pool.v[1], *b = pool.v[2];

  /* Unique: rebinding updates the map object in place. */
  uvw__map_t *before = map;
  cr_assert_eq(uvw__map_set(&map, plain_key(0), a), 0);
  cr_assert_eq(map, before, "size %u: a unique map is updated in place", size);
  cr_assert_eq(refs_of(a), 2);

  /* Shared: the snapshot keeps the old binding and its reference. */
  uvw__map_t *snap = uvw__map_ref(map);
  cr_assert_eq(uvw__map_set(&map, plain_key(0), b), 0);
  cr_assert_neq(map, snap, "size %u: a shared map is copied", size);
  cr_assert_eq(uvw__map_get(snap, plain_key(0)), a);
  cr_assert_eq(uvw__map_get(map, plain_key(0)), b);
  cr_assert_eq(refs_of(a), 2, "size %u: snapshot still holds a", size);
  cr_assert_eq(refs_of(b), 2);
  cr_assert_eq(uvw__map_remove(&map, plain_key(1)), 0);
  cr_assert_eq(uvw__map_size(map), size - 1);
  cr_assert_eq(uvw__map_size(snap), size);
  cr_assert_eq(uvw__map_get(snap, plain_key(1)), pool.v[0]);
  cr_assert_eq(uvw__map_set(&map, plain_key(2047), a), 0);
  cr_assert_null(uvw__map_get(snap, plain_key(2047)));

  /* The copy is now unique again: in place once more. */
  before = map;
  cr_assert_eq(uvw__map_set(&map, plain_key(2), a), 0);
  cr_assert_eq(map, before);
  cr_assert_eq(uvw__map_get(snap, plain_key(2)), pool.v[0]);

  uvw__map_unref(snap);
  cr_assert_eq(refs_of(a), 3, "map holds a twice once the snapshot is gone");
  cr_assert_eq(refs_of(b), 2);
  uvw__map_unref(map);
  pool_drop_and_check(&pool);
}

Test(map, snapshots_persist_and_unique_maps_update_in_place) {
  uint32_t sizes[] = {3, 8, 15, 16, 17, 33, 64, 65, 200, 1000};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) check_sharing(sizes[i]);
}

Test(map, empty_map_is_null) {
  uvw__map_t *map = NULL;
  cr_assert_eq(uvw__map_size(map), 0);
  cr_assert_null(uvw__map_get(map, plain_key(0)));
  cr_assert_eq(uvw__map_remove(&map, plain_key(0)), 0);
  cr_assert_null(map);
  cr_assert_null(uvw__map_ref(NULL));
  uvw__map_unref(NULL);
  uvw_value_t *v = uvw_value_int(7);
  cr_assert_eq(uvw__map_set(&map, plain_key(0), v), 0);
  cr_assert_not_null(map);
  cr_assert_eq(uvw__map_remove(&map, plain_key(1)), 0, "removing an absent key is a no-op");
  cr_assert_eq(uvw__map_size(map), 1);
  cr_assert_eq(uvw__map_remove(&map, plain_key(0)), 0);
  cr_assert_null(map, "removing the last binding gives the empty map");
  cr_assert_eq(refs_of(v), 1);
  uvw_value_unref(v);
}

Test(map, immortal_values_are_not_counted) {
  uvw__map_t *map = NULL;
  for (uint32_t i = 0; i < 40; i++)
    cr_assert_eq(uvw__map_set(&map, plain_key(i), i % 2 ? uvw_value_nil() : uvw_value_undefined()), 0);
  cr_assert_eq(uvw__map_get(map, plain_key(3)), uvw_value_nil());
  cr_assert_eq(uvw__map_get(map, plain_key(4)), uvw_value_undefined());
  cr_assert_eq(refs_of(uvw_value_nil()), 1);
  uvw__map_unref(map);
  cr_assert_eq(refs_of(uvw_value_nil()), 1);
}

/* ---- failure injection -------------------------------------------------------------------------- */

static long alloc_calls, fail_at, live_blocks;

static void *failing_malloc(size_t n) {
  if (++alloc_calls == fail_at) return NULL;
  void *p = malloc(n);
  if (p) live_blocks++;
  return p;
}

static void *failing_calloc(size_t c, size_t n) {
  if (++alloc_calls == fail_at) return NULL;
  void *p = calloc(c, n);
  if (p) live_blocks++;
  return p;
}

static void *failing_realloc(void *q, size_t n) {
  if (++alloc_calls == fail_at) return NULL;
  void *p = realloc(q, n);
  if (p && q == NULL) live_blocks++;
  return p;
}

static void counting_free(void *p) {
  if (p) live_blocks--;
  free(p);
}

static void install_failing(long n) {
  alloc_calls = 0;
  fail_at = n;
  live_blocks = 0;
  cr_assert_eq(uvw_replace_allocator(failing_malloc, failing_realloc, failing_calloc, counting_free), 0);
}

static void restore_allocator(void) {
  cr_assert_eq(uvw_replace_allocator(malloc, realloc, calloc, free), 0);
}

typedef enum { OP_SET, OP_REMOVE } op_kind_t;

/* Runs one operation failing the 1st, 2nd, ... allocation until it
 * succeeds; each failure must leave slot, contents, value refcounts and
 * allocations exactly as they were. Returns how many failures it saw. */
static int fail_until_success(uvw__map_t **slot, model_t *model, const keys_t *ks, pool_t *pool,
                              op_kind_t op, uint32_t ki, uvw_value_t *v, const char *what) {
  const void *key = ks->k[ki];
  unsigned refs[NVALUES];
  for (int n = 1;; n++) {
    uvw__map_t *before = *slot;
    for (int i = 0; i < NVALUES; i++) refs[i] = refs_of(pool->v[i]);
    install_failing(n);
    int rc = op == OP_SET ? uvw__map_set(slot, key, v) : uvw__map_remove(slot, key);
    long leaked = live_blocks;
    restore_allocator();
    if (rc == 0) {
      if (op == OP_SET)
        model_set(model, ki, v);
      else
        model_remove(model, ki);
      check_map(*slot, model, ks, what, 0, n);
      return n - 1;
    }
    cr_assert_eq(rc, UVW_ENOMEM, "%s: failure %d returned %d", what, n, rc);
    cr_assert_eq(*slot, before, "%s: failure %d changed the slot", what, n);
    cr_assert_eq(leaked, 0, "%s: failure %d left %ld blocks allocated", what, n, leaked);
    for (int i = 0; i < NVALUES; i++)
      cr_assert_eq(refs_of(pool->v[i]), refs[i], "%s: failure %d changed value %d's refcount", what,
                   n, i);
    check_map(*slot, model, ks, what, 0, n);
    cr_assert_lt(n, 100, "%s: never succeeded", what);
  }
}

/* For maps of `size` bindings, unique and shared, every kind of update
 * under every allocation failure. */
static void check_failures(uint32_t size, uint32_t groups) {
  rng_t r = rng_new(size * 7 + groups);
  pool_t pool;
  pool_init(&pool);
  keys_t *ks = malloc(sizeof(*ks));
  model_t *model = calloc(1, sizeof(*model)), *smodel = malloc(sizeof(*smodel));
  cr_assert(ks && model && smodel);
  keys_make(ks, size + 8, groups, &r);
  uvw__map_t *map = NULL;
  /* Crafted keys first so that collision groups are in the map. */
  for (uint32_t i = 0; i < size; i++) {
    uint32_t ki = ks->n - 1 - i;
    cr_assert_eq(uvw__map_set(&map, ks->k[ki], pool.v[i % NVALUES]), 0);
    model_set(model, ki, pool.v[i % NVALUES]);
  }
  int failures = 0;
  for (int shared = 0; shared <= 1; shared++) {
    uvw__map_t *snap = shared ? uvw__map_ref(map) : NULL;
    *smodel = *model;
    uint32_t present = size ? ks->n - 1 - rng_below(&r, size) : 0;
    uint32_t absent = 0; /* plain keys 0..7 are never inserted above */
    failures += fail_until_success(&map, model, ks, &pool, OP_SET, present, pool.v[NVALUES - 1], "rebind");
    failures += fail_until_success(&map, model, ks, &pool, OP_SET, absent, pool.v[NVALUES - 2], "add");
    failures += fail_until_success(&map, model, ks, &pool, OP_REMOVE, present, NULL, "remove");
    failures += fail_until_success(&map, model, ks, &pool, OP_REMOVE, absent, NULL, "remove added");
    failures += fail_until_success(&map, model, ks, &pool, OP_REMOVE, 1, NULL, "remove absent");
    if (snap) {
      check_map(snap, smodel, ks, "snapshot after failures", 0, 0);
      uvw__map_unref(snap);
    }
  }
  /* A shared map always copies, so its updates can always fail. */
  cr_assert_geq(failures, 1, "size %u: no allocation was ever failed", size);
  uvw__map_unref(map);
  pool_drop_and_check(&pool);
  free(ks);
  free(model);
  free(smodel);
}

Test(map, allocation_failures_change_nothing) {
  uint32_t sizes[] = {0, 1, 2, 4, 7, 8, 9, 15, 16, 17, 18, 24, 31, 32, 33, 64, 100, 400, 1000};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) check_failures(sizes[i], 0);
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) check_failures(sizes[i], 4);
}

/* Random sequences where every operation runs under failure injection. */
Test(map, allocation_failures_random) {
  for (uint64_t seed = 1; seed <= 6; seed++) {
    rng_t r = rng_new(seed + 500);
    pool_t pool;
    pool_init(&pool);
    keys_t *ks = malloc(sizeof(*ks));
    model_t *model = calloc(1, sizeof(*model));
    cr_assert(ks && model);
    keys_make(ks, 60, 4, &r);
    uvw__map_t *map = NULL, *snap = NULL;
    for (int step = 0; step < 300; step++) {
      uint32_t key = rng_below(&r, ks->n);
      uint32_t op = rng_below(&r, 100);
      if (op < 10) {
        uvw__map_unref(snap);
        snap = uvw__map_ref(map);
      } else if (op < (step < 150 ? 80u : 40u)) {
        fail_until_success(&map, model, ks, &pool, OP_SET, key, pool.v[rng_below(&r, NVALUES)], "random set");
      } else {
        fail_until_success(&map, model, ks, &pool, OP_REMOVE, key, NULL, "random remove");
      }
    }
    uvw__map_unref(snap);
    uvw__map_unref(map);
    pool_drop_and_check(&pool);
    free(ks);
    free(model);
  }
}

/* ---- threads ------------------------------------------------------------------------------------ */

typedef struct worker_s {
  uvw__map_t *map; /* a reference of its own on the shared map */
  uvw_value_t *v;
  int ok;
} worker_t;

/* Each thread updates its own slot starting from the shared map, the way a
 * context copied to worker threads is used; the shared map must not move. */
static void *worker(void *arg) {
  worker_t *w = arg;
  w->ok = 1;
  for (int round = 0; round < 200; round++) {
    uvw__map_t *mine = uvw__map_ref(w->map);
    for (uint32_t i = 0; i < 40; i++)
      if (uvw__map_set(&mine, plain_key(i), w->v) != 0) w->ok = 0;
    for (uint32_t i = 0; i < 40; i++)
      if (uvw__map_get(mine, plain_key(i)) != w->v || uvw__map_get(w->map, plain_key(i)) == w->v) w->ok = 0;
    for (uint32_t i = 0; i < 40; i += 2)
      if (uvw__map_remove(&mine, plain_key(i)) != 0) w->ok = 0;
    size_t size = uvw__map_size(w->map);
    if (uvw__map_size(mine) != (size > 40 ? size : 40) - 20) w->ok = 0;
    uvw__map_unref(mine);
  }
  uvw__map_unref(w->map);
  return NULL;
}

Test(map, threads_share_a_map) {
  pool_t pool;
  pool_init(&pool);
  for (uint32_t size = 8; size <= 64; size *= 8) {
    uvw__map_t *shared = NULL;
    for (uint32_t i = 0; i < size; i++) cr_assert_eq(uvw__map_set(&shared, plain_key(i), pool.v[0]), 0);
    pthread_t t[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
      w[i] = (worker_t){uvw__map_ref(shared), pool.v[1 + i], 0};
      cr_assert_eq(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
      pthread_join(t[i], NULL);
      cr_assert(w[i].ok, "worker %d saw a wrong map", i);
    }
    for (uint32_t i = 0; i < size; i++) cr_assert_eq(uvw__map_get(shared, plain_key(i)), pool.v[0]);
    uvw__map_unref(shared);
  }
  pool_drop_and_check(&pool);
}

/* ---- collisions, directed -------------------------------------------------------------------------- */

Test(map, full_hash_collisions) {
  if (sizeof(void *) < 8) cr_skip_test("crafted keys need 64-bit pointers");
  pool_t pool;
  pool_init(&pool);
  uvw__map_t *map = NULL;
  /* Enough plain keys for a HAMT, then five keys sharing one hash. */
  for (uint32_t i = 0; i < 100; i++) cr_assert_eq(uvw__map_set(&map, plain_key(i), pool.v[0]), 0);
  const void *c[5];
  for (uint32_t j = 0; j < 5; j++) c[j] = key_with_hash(0x12345678u, j + 1);
  for (uint32_t j = 0; j < 4; j++) cr_assert_eq(uvw__map_set(&map, c[j], pool.v[j + 1]), 0);
  uvw__map_t *snap = uvw__map_ref(map);
  cr_assert_null(uvw__map_get(map, c[4]), "same hash, absent key");
  cr_assert_eq(uvw__map_remove(&map, c[4]), 0);
  cr_assert_eq(map, snap, "removing an absent colliding key changes nothing");
  for (uint32_t j = 0; j < 4; j++) {
    cr_assert_eq(uvw__map_remove(&map, c[j]), 0);
    cr_assert_eq(uvw__map_size(map), 100 + 3 - j);
    cr_assert_null(uvw__map_get(map, c[j]));
    for (uint32_t k = j + 1; k < 4; k++) cr_assert_eq(uvw__map_get(map, c[k]), pool.v[k + 1]);
    for (uint32_t k = 0; k < 4; k++) cr_assert_eq(uvw__map_get(snap, c[k]), pool.v[k + 1]);
  }
  uvw__map_unref(snap);
  uvw__map_unref(map);
  pool_drop_and_check(&pool);
}
