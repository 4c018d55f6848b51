/* A connection's cache of decoded manifests (wire/manifest_cache.c): an
 * unchanged manifest is copied instead of decoded, and only when decoding it
 * again could not have given anything else. Manifests are built with
 * protobuf-c directly. */
#include <stdio.h>

#include "chain.h"
#include "context.h"
#include "var.h"
#include "wire_frame.h"
#include "wire_int.h"
#include "wiretest.h"

#define ID "000000000000000000000000000ca5e0"

static uint8_t *pack(wt_manifest_t *w, size_t *len) { return wt_pack_manifest(w, len); }

static uvw_manifest_t *decode(uvw__mcache_t *c, const uint8_t *b, size_t len, size_t *created) {
  uvw_manifest_t *m = NULL;
  int rc = uvw__mcache_decode(c, b, len, 64, &m, created);
  cr_assert_eq(rc, 0, "decode: %s", uvw_error_message(uvw_last_error()));
  return m;
}

Test(manifest_cache, an_unchanged_manifest_is_copied_and_each_copy_is_its_own) {
  const char *ns = tu_namespace();
  uvw_var_t *a = wt_declare(ns, "a");
  wt_declare(ns, "b");
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "a", 1), "req-1");
  wt_entry(&w, ns, "b", 0);
  size_t len;
  uint8_t *bytes = pack(&w, &len);
  uvw__mcache_t *c = uvw__mcache_new();
  uvw_manifest_t *first = decode(c, bytes, len, NULL);
  cr_assert_eq(uvw__mcache_hits(c), 0);
  uvw_manifest_t *second = decode(c, bytes, len, NULL);
  cr_assert_eq(uvw__mcache_hits(c), 1, "the same bytes again: copied");
  cr_assert_neq(second, first);
  cr_assert_eq(uvw_manifest_entry_count(second), 2);
  cr_assert_eq(uvw_manifest_entry_var(second, 0), a);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(second, 0)), "req-1");
  cr_assert_null(uvw_manifest_entry_value(second, 1), "b's reset");
  char id[33];
  cr_assert_eq(uvw_manifest_id(second, id), 0);
  cr_assert_str_eq(id, ID);
  uvw_manifest_free(first); /* the copy outlives the first, and the cache both */
  uvw__mcache_free(c);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(second, 0)), "req-1");
  uvw_manifest_free(second);

  /* Other bytes of the same chain replace the entry. */
  c = uvw__mcache_new();
  uvw_manifest_free(decode(c, bytes, len, NULL));
  wt_string(&w.values[0], "req-2");
  size_t len2;
  uint8_t *bytes2 = pack(&w, &len2);
  uvw_manifest_t *changed = decode(c, bytes2, len2, NULL);
  cr_assert_eq(uvw__mcache_hits(c), 0);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(changed, 0)), "req-2");
  uvw_manifest_free(changed);
  uvw__mcache_free(c);
  free(bytes);
  free(bytes2);
}

/* Each case decodes the same bytes twice and must never be answered from
 * the cache: what it holds depends on more than its bytes. */
static void never_cached(wt_manifest_t *w) {
  size_t len;
  uint8_t *bytes = pack(w, &len);
  uvw__mcache_t *c = uvw__mcache_new();
  for (int i = 0; i < 2; i++) uvw_manifest_free(decode(c, bytes, len, NULL));
  cr_assert_eq(uvw__mcache_hits(c), 0);
  uvw__mcache_free(c);
  free(bytes);
}

/* A cached manifest holds its stubs: a copy makes none, so none is
 * charged; the cache holds at most 32 (manifest_cache.c) and lets them go
 * with itself. */
Test(manifest_cache, stubs_are_held_by_the_cache_within_its_bound) {
  const char *ns = tu_namespace();
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "nobody-declared-me", 1), 1);
  size_t len, created;
  uint8_t *bytes = pack(&w, &len);
  uvw__mcache_t *c = uvw__mcache_new();
  uvw_manifest_t *m = decode(c, bytes, len, &created);
  cr_assert_eq(created, 1);
  uvw_manifest_free(m);
  cr_assert_eq(uvw__var_stub_count(), 1, "the cache holds the stub");
  m = decode(c, bytes, len, &created);
  cr_assert_eq(uvw__mcache_hits(c), 1);
  cr_assert_eq(created, 0, "a copy makes no stub and is charged none");
  cr_assert(uvw_var_is_stub(uvw_manifest_entry_var(m, 0)));
  uvw__mcache_free(c);
  cr_assert_eq(uvw__var_stub_count(), 1, "the copy still holds it");
  uvw_manifest_free(m);
  cr_assert_eq(uvw__var_stub_count(), 0, "and nothing else does");
  free(bytes);

  /* 33 stubs in one manifest: past the cache's bound, decoded each time. */
  char names[33][8];
  wt_init(&w, ID);
  for (int i = 0; i < 32; i++) {
    snprintf(names[i], sizeof names[i], "s%02d", i);
    wt_int(wt_entry(&w, ns, names[i], 1), i);
  }
  bytes = pack(&w, &len);
  c = uvw__mcache_new();
  uvw_manifest_free(decode(c, bytes, len, NULL));
  cr_assert_eq(uvw__var_stub_count(), 32, "32 stubs: within the bound, kept");
  free(bytes);
  snprintf(names[32], sizeof names[32], "s32");
  wt_int(wt_entry(&w, ns, names[32], 1), 32);
  bytes = pack(&w, &len);
  for (int i = 0; i < 2; i++) {
    m = decode(c, bytes, len, &created);
    cr_assert_eq(created, 1, "s32 made again at decode %d", i);
    uvw_manifest_free(m);
  }
  cr_assert_eq(uvw__mcache_hits(c), 0);
  uvw__mcache_free(c);
  cr_assert_eq(uvw__var_stub_count(), 0);
  free(bytes);
}

Test(manifest_cache, a_duplicate_warns_at_every_decode) {
  const char *ns = tu_namespace();
  wt_declare(ns, "a");
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "a", 1), 1);
  wt_int(wt_entry(&w, ns, "a", 1), 2);
  wt_capture();
  never_cached(&w);
  cr_assert_eq(wt_nwarnings, 2, "one warning per decode");
  wt_release();
}

static const uvw_opaque_ops_t box_ops = {"test.box", free};
static int box_encode(const uvw_value_t *v, void *arg, uvw_value_t **out) {
  (void)v, (void)arg;
  *out = uvw_value_bytes("x", 1);
  return 0;
}
static int box_decode(const void *data, size_t len, void *arg, uvw_value_t **out) {
  (void)data, (void)len, (void)arg;
  *out = uvw_value_opaque(malloc(1), &box_ops);
  return 0;
}

Test(manifest_cache, an_opaque_value_is_decoded_by_its_codec_each_time) {
  const char *ns = tu_namespace();
  wt_declare(ns, "a");
  cr_assert_eq(uvw_codec_register("test.box", box_encode, box_decode, NULL), 0);
  wt_manifest_t w;
  wt_init(&w, ID);
  Uvwool__Value *v = wt_entry(&w, ns, "a", 1);
  uvwool__opaque__init(&w.opaques[0]);
  w.opaques[0].codec = "test.box";
  w.opaques[0].data.data = (uint8_t *)"x";
  w.opaques[0].data.len = 1;
  v->kind_case = UVWOOL__VALUE__KIND_OPAQUE;
  v->opaque = &w.opaques[0];
  size_t len;
  uint8_t *bytes = pack(&w, &len);
  uvw__mcache_t *c = uvw__mcache_new();
  uvw_manifest_t *one = decode(c, bytes, len, NULL), *two = decode(c, bytes, len, NULL);
  cr_assert_eq(uvw_value_kind(uvw_manifest_entry_value(one, 0)), UVW_VALUE_OPAQUE);
  cr_assert_neq(uvw_value_as_opaque(uvw_manifest_entry_value(one, 0)),
                uvw_value_as_opaque(uvw_manifest_entry_value(two, 0)), "a new object from the codec each time");
  cr_assert_eq(uvw__mcache_hits(c), 0);
  uvw_manifest_free(one);
  uvw_manifest_free(two);
  uvw__mcache_free(c);
  free(bytes);
}

Test(manifest_cache, a_policy_change_is_seen) {
  const char *ns = tu_namespace();
  wt_declare(ns, "a");
  uvw_var_t *b = wt_declare(ns, "b");
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "a", 1), 1);
  wt_int(wt_entry(&w, ns, "b", 1), 2);
  size_t len;
  uint8_t *bytes = pack(&w, &len);
  uvw__mcache_t *c = uvw__mcache_new();
  uvw_manifest_free(decode(c, bytes, len, NULL));
  cr_assert_eq(uvw_var_set_policy(b, UVW_PROPAGATE_FORK | UVW_PROPAGATE_THREAD), 0);
  uvw_manifest_t *m = decode(c, bytes, len, NULL);
  cr_assert_eq(uvw__mcache_hits(c), 0);
  cr_assert_eq(uvw_manifest_entry_count(m), 1, "b is kept off the wire here now");
  uvw_manifest_free(m);
  uvw__mcache_free(c);
  free(bytes);
}

/* Mounts m into a fresh context (returned, not entered). */
static uvw_context_t *mount_fresh(const uvw_manifest_t *m) {
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_enter(ctx), 0);
  cr_assert_eq(uvw_manifest_mount(m), 0, "mount: %s", uvw_error_message(uvw_last_error()));
  cr_assert_eq(uvw_context_exit(ctx), 0);
  return ctx;
}

static const char *string_in(uvw_context_t *ctx, uvw_var_t *v) {
  uvw_value_t *x = uvw_context_lookup(ctx, v);
  cr_assert_not_null(x);
  return uvw_value_as_string(x);
}

/* A copy of a kept manifest carries the map of its bindings: a fresh
 * context mounts it whole, the encoding one context made serves the next,
 * and a set in one context changes no other (the map is copied, never
 * changed in place). */
Test(manifest_cache, a_fresh_context_takes_the_kept_map_and_a_set_copies_it) {
  const char *ns = tu_namespace();
  uvw_var_t *a = wt_declare(ns, "a"), *b = wt_declare(ns, "b");
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "a", 1), "req-1");
  wt_int(wt_entry(&w, ns, "b", 1), 2);
  wt_int(wt_entry(&w, ns, "nobody-declared-me", 1), 3);
  size_t len;
  uint8_t *bytes = pack(&w, &len);
  uvw__mcache_t *c = uvw__mcache_new();
  uvw_manifest_t *first = decode(c, bytes, len, NULL);
  cr_assert_null(first->map, "a decode (not a copy) builds no map");
  uvw_manifest_t *m1 = decode(c, bytes, len, NULL), *m2 = decode(c, bytes, len, NULL);
  cr_assert_eq(uvw__mcache_hits(c), 2);
  cr_assert_not_null(m1->map);
  cr_assert_eq(m1->map, m2->map, "the copies share one map");

  uvw_context_t *x = mount_fresh(m1);
  cr_assert_eq(x->map, m1->map, "taken whole");
  cr_assert_str_eq(string_in(x, a), "req-1");
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(x, b)), 2);
  uvw_var_t *stub = uvw_manifest_entry_var(m1, 2);
  cr_assert(uvw_var_is_stub(stub));
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(x, stub)), 3);
  cr_assert(uvw__chain_has_stub(x->chain, stub), "the chain pins the stub as a mount entry by entry does");
  char id[33];
  cr_assert_eq(uvw_context_chain_id(x, id), 0);
  cr_assert_str_eq(id, ID);

  void *ex;
  size_t exn;
  cr_assert_eq(uvw__manifest_encode(x, 0, &ex, &exn), 0);
  cr_assert(exn == len && memcmp(ex, bytes, len) == 0, "the mounted state encodes to the bytes it came from");
  uvw_context_t *y = mount_fresh(m2);
  cr_assert_not_null(uvw__map_memo(y->map), "x's encoding serves y");

  /* A routine's set in y: y gets its own map; x, the cache and its next
   * copy keep the state the bytes describe. */
  cr_assert_eq(uvw_context_enter(y), 0);
  wt_set(a, uvw_value_cstring("changed in y"));
  cr_assert_eq(uvw_context_exit(y), 0);
  cr_assert_neq(y->map, m2->map);
  cr_assert_str_eq(string_in(y, a), "changed in y");
  cr_assert_str_eq(string_in(x, a), "req-1");
  uvw_manifest_t *m3 = decode(c, bytes, len, NULL);
  uvw_context_t *z = mount_fresh(m3);
  cr_assert_str_eq(string_in(z, a), "req-1");
  void *ey, *ez;
  size_t eyn, ezn;
  cr_assert_eq(uvw__manifest_encode(y, 0, &ey, &eyn), 0);
  cr_assert_eq(uvw__manifest_encode(z, 0, &ez, &ezn), 0);
  cr_assert(ezn == len && memcmp(ez, bytes, len) == 0);
  Uvwool__ChainManifest *py = wt_unpack(ey, eyn);
  cr_assert_eq(py->n_entries, 3);
  ProtobufCBinaryData sv = py->entries[0]->value->string_value;
  cr_assert(sv.len == 12 && memcmp(sv.data, "changed in y", 12) == 0, "y's encoding is its own");
  uvwool__chain_manifest__free_unpacked(py, NULL);

  /* A context that is not fresh merges entry by entry, as before. */
  cr_assert_eq(uvw_context_enter(y), 0);
  cr_assert_eq(uvw_manifest_mount(m3), 0);
  cr_assert_eq(uvw_context_exit(y), 0);
  cr_assert_str_eq(string_in(y, a), "req-1");
  cr_assert_neq(y->map, m3->map);

  uvw_free(ex);
  uvw_free(ey);
  uvw_free(ez);
  uvw_context_unref(x);
  uvw_context_unref(y);
  uvw_context_unref(z);
  uvw_manifest_t *all[] = {first, m1, m2, m3};
  for (size_t i = 0; i < 4; i++) uvw_manifest_free(all[i]);
  uvw__mcache_free(c);
  cr_assert_eq(uvw__var_stub_count(), 0, "nothing holds the stub any more");
  free(bytes);
}

/* A pending reset is not a binding: a manifest with one gets no map, and
 * its mount leaves the reset pending. */
Test(manifest_cache, a_manifest_with_a_reset_is_mounted_entry_by_entry) {
  const char *ns = tu_namespace();
  uvw_var_t *a = wt_declare(ns, "a");
  wt_declare(ns, "b");
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "a", 1), "req-1");
  wt_entry(&w, ns, "b", 0);
  size_t len;
  uint8_t *bytes = pack(&w, &len);
  uvw__mcache_t *c = uvw__mcache_new();
  uvw_manifest_free(decode(c, bytes, len, NULL));
  uvw_manifest_t *m = decode(c, bytes, len, NULL);
  cr_assert_eq(uvw__mcache_hits(c), 1);
  cr_assert_null(m->map);
  uvw_context_t *x = mount_fresh(m);
  cr_assert_str_eq(string_in(x, a), "req-1");
  cr_assert(uvw_context_has_pending_reset(x, ns, "b"));
  uvw_context_unref(x);
  uvw_manifest_free(m);
  uvw__mcache_free(c);
  free(bytes);
}
