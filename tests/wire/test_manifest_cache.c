/* A connection's cache of decoded manifests (wire/manifest_cache.c): an
 * unchanged manifest is copied instead of decoded, and only when decoding it
 * again could not have given anything else. Manifests are built with
 * protobuf-c directly. */
#include <stdio.h>

#include "var.h"
#include "wire_frame.h"
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
  uvw_var_t *a, *b;
  cr_assert_eq(uvw_var_declare(ns, "a", NULL, &a), 0);
  cr_assert_eq(uvw_var_declare(ns, "b", NULL, &b), 0);
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
  uvw_var_t *a;
  cr_assert_eq(uvw_var_declare(ns, "a", NULL, &a), 0);
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
  uvw_var_t *a;
  cr_assert_eq(uvw_var_declare(ns, "a", NULL, &a), 0);
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
  uvw_var_t *a, *b;
  cr_assert_eq(uvw_var_declare(ns, "a", NULL, &a), 0);
  cr_assert_eq(uvw_var_declare(ns, "b", NULL, &b), 0);
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
