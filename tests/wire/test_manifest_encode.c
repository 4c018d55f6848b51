/* docs/testing.md row 25: manifest encode. Every expectation is read back with
 * protobuf-c directly, never through uvwool's own decoder. */
#include <math.h>

#include "context.h"
#include "wiretest.h"

static uvw_var_t *declare(const char *ns, const char *name, uvw_value_t *dflt) {
  uvw_var_t *v;
  cr_assert_eq(uvw_var_declare(ns, name, dflt, &v), 0);
  return v;
}

static void encode(uvw_context_t *ctx, uint8_t **out, size_t *len) {
  void *p;
  int rc = uvw_manifest_encode(ctx, &p, len);
  cr_assert_eq(rc, 0, "encode: %s", uvw_error_message(uvw_last_error()));
  *out = p;
}

Test(manifest_encode, entries_resets_defaults_and_order) {
  const char *ns = tu_namespace();
  char ns2[64];
  snprintf(ns2, sizeof ns2, "%s-z", ns); /* sorts after ns bytewise */
  uvw_value_t *d = uvw_value_int(7);
  uvw_var_t *b = declare(ns, "b", NULL), *a = declare(ns, "a", NULL), *c = declare(ns, "c", NULL);
  uvw_var_t *dflt = declare(ns, "default_only", d);
  uvw_var_t *z = declare(ns2, "a", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(z, uvw_value_cstring("zz"));
  wt_set(b, uvw_value_int(-2));
  wt_set(a, uvw_value_cstring("x"));
  wt_set_reset(c); /* pending reset */
  (void)dflt;
  uint8_t *bytes;
  size_t len;
  encode(NULL, &bytes, &len);
  Uvwool__ChainManifest *m = wt_unpack(bytes, len);
  char id[33];
  cr_assert_eq(uvw_context_chain_id(ctx, id), 0);
  cr_assert_str_eq(m->id, id);
  cr_assert_eq(m->n_entries, 4, "a, b, c (reset), z; default-only absent");
  const char *want_ns[] = {ns, ns, ns, ns2}, *want_name[] = {"a", "b", "c", "a"};
  for (size_t i = 0; i < 4; i++) {
    cr_assert_str_eq(m->entries[i]->namespace_, want_ns[i]);
    cr_assert_str_eq(m->entries[i]->name, want_name[i]);
  }
  cr_assert_eq(m->entries[0]->value->kind_case, UVWOOL__VALUE__KIND_STRING_VALUE);
  cr_assert_eq(m->entries[0]->value->string_value.len, 1);
  cr_assert_eq(m->entries[0]->value->string_value.data[0], 'x');
  cr_assert_eq(m->entries[1]->value->kind_case, UVWOOL__VALUE__KIND_INT_VALUE);
  cr_assert_eq(m->entries[1]->value->int_value, -2);
  cr_assert_null(m->entries[2]->value, "a pending reset has no value");
  uvwool__chain_manifest__free_unpacked(m, NULL);
  free(bytes);
  wt_leave(ctx);
  uvw_value_unref(d);
}

/* Two contexts reach the same state (same id, same bindings) through
 * different histories: their encodings are byte-identical. Also past the
 * flat map size, where the map's iteration order is the HAMT's. */
static void same_state_same_bytes(size_t nvars) {
  const char *ns = tu_namespace();
  uvw_var_t *vars[40];
  char name[32];
  for (size_t i = 0; i < nvars; i++) {
    snprintf(name, sizeof name, "v%02zu", (i * 7) % nvars);
    vars[i] = declare(ns, name, NULL);
  }
  wt_manifest_t w;
  wt_init(&w, "00112233445566778899aabbccddeeff");
  wt_int(wt_entry(&w, ns, uvw_var_name(vars[0]), 1), 0);
  size_t seedlen;
  uint8_t *seed = wt_pack_manifest(&w, &seedlen);
  uvw_manifest_t *mm;
  cr_assert_eq(uvw_manifest_decode(seed, seedlen, &mm), 0);
  uint8_t *out[2];
  size_t len[2];
  for (int round = 0; round < 2; round++) {
    uvw_context_t *ctx = wt_enter_new();
    cr_assert_eq(uvw_manifest_mount(mm), 0);
    for (size_t k = 0; k < nvars; k++) {
      size_t i = round == 0 ? k : nvars - 1 - k;
      wt_set(vars[i], uvw_value_int((int64_t)i));
    }
    encode(NULL, &out[round], &len[round]);
    wt_leave(ctx);
  }
  cr_assert_eq(len[0], len[1]);
  cr_assert_eq(memcmp(out[0], out[1], len[0]), 0, "equal states encode to equal bytes");
  Uvwool__ChainManifest *m = wt_unpack(out[0], len[0]);
  cr_assert_eq(m->n_entries, nvars);
  for (size_t i = 1; i < nvars; i++) cr_assert_lt(strcmp(m->entries[i - 1]->name, m->entries[i]->name), 0);
  uvwool__chain_manifest__free_unpacked(m, NULL);
  free(out[0]);
  free(out[1]);
  free(seed);
  uvw_manifest_free(mm);
}

Test(manifest_encode, deterministic_small) { same_state_same_bytes(5); }
Test(manifest_encode, deterministic_large) { same_state_same_bytes(37); }

Test(manifest_encode, unarmed_encodes_to_nothing) {
  uvw_context_t *ctx = wt_enter_new();
  void *p = (void *)1;
  size_t len = 99;
  cr_assert_eq(uvw_manifest_encode(NULL, &p, &len), 0);
  cr_assert_null(p);
  cr_assert_eq(len, 0);
  wt_leave(ctx);
}

Test(manifest_encode, wire_policy_opt_out_is_absent) {
  uvw_var_t *keep = tu_var("keep", NULL), *secret = tu_var("secret", NULL);
  cr_assert_eq(uvw_var_set_policy(secret, UVW_PROPAGATE_FORK | UVW_PROPAGATE_THREAD), 0);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(keep, uvw_value_int(1));
  wt_set(secret, uvw_value_cstring("pw"));
  uint8_t *bytes;
  size_t len;
  encode(NULL, &bytes, &len);
  Uvwool__ChainManifest *m = wt_unpack(bytes, len);
  cr_assert_eq(m->n_entries, 1);
  cr_assert_str_eq(m->entries[0]->name, "keep");
  uvwool__chain_manifest__free_unpacked(m, NULL);
  free(bytes);
  wt_leave(ctx);
}

Test(manifest_encode, unencodable_value_warns_and_drops_its_key) {
  uvw_var_t *good = tu_var("good", NULL), *opaque = tu_var("opaque", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(good, uvw_value_cstring("g"));
  wt_set(opaque, tu_counted_value()); /* "test.counted": no codec */
  wt_capture();
  uint8_t *bytes;
  size_t len;
  encode(NULL, &bytes, &len);
  cr_assert_eq(wt_nwarnings, 1);
  cr_assert_eq(uvw_error_kind(wt_warnings[0]), UVW_KIND_SERIALIZATION_WARNING);
  cr_assert_str_eq(uvw_error_field(wt_warnings[0], "name"), "opaque");
  cr_assert_str_eq(uvw_error_field(wt_warnings[0], "namespace"), uvw_var_namespace(opaque));
  Uvwool__ChainManifest *m = wt_unpack(bytes, len);
  cr_assert_eq(m->n_entries, 1, "dropped entirely: no value and no false reset");
  cr_assert_str_eq(m->entries[0]->name, "good");
  uvwool__chain_manifest__free_unpacked(m, NULL);
  free(bytes);
  wt_release();
  wt_leave(ctx);
}

Test(manifest_encode, strict_mode_aggregates_every_failure) {
  uvw_var_t *good = tu_var("good", NULL), *o1 = tu_var("o1", NULL), *o2 = tu_var("o2", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(good, uvw_value_int(1));
  wt_set(o1, tu_counted_value());
  wt_set(o2, tu_counted_value());
  uvw_set_strict(1);
  wt_capture();
  void *p = (void *)1;
  size_t len = 5;
  int rc = uvw_manifest_encode(NULL, &p, &len);
  cr_assert_eq(rc, UVW_ECHAINSERIALIZE);
  cr_assert_null(p);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_CHAIN_SERIALIZATION_ERROR);
  cr_assert(uvw_error_kind_is(uvw_error_kind(e), UVW_KIND_SERIALIZATION_ERROR));
  cr_assert_eq(uvw_error_warning_count(e), 2, "both failures listed");
  cr_assert_str_eq(uvw_error_field(uvw_error_warning(e, 0), "name"), "o1");
  cr_assert_str_eq(uvw_error_field(uvw_error_warning(e, 1), "name"), "o2");
  cr_assert_eq(uvw_error_kind(uvw_error_warning(e, 0)), UVW_KIND_SERIALIZATION_WARNING);
  cr_assert_not_null(strstr(uvw_error_message(e), "o1"));
  cr_assert_not_null(strstr(uvw_error_message(e), "o2"));
  cr_assert_eq(wt_nwarnings, 0, "strict mode fails once instead of warning");
  wt_release();
  uvw_set_strict(0);
  wt_leave(ctx);
}

/* ---- value kinds ---- */

typedef struct {
  int x, y;
} point_t;
static void point_release(void *p) { free(p); }
static const uvw_opaque_ops_t point_ops = {"test.point", point_release};
static int point_encode(const uvw_value_t *v, void *arg, uvw_value_t **out) {
  (void)arg;
  const point_t *p = uvw_value_as_opaque(v);
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%d,%d", p->x, p->y);
  *out = uvw_value_bytes(buf, (size_t)n);
  return 0;
}
static int point_decode(const void *data, size_t len, void *arg, uvw_value_t **out) {
  (void)arg;
  char buf[32];
  if (len >= sizeof buf) return -1;
  memcpy(buf, data, len);
  buf[len] = '\0';
  point_t *p = malloc(sizeof *p);
  if (sscanf(buf, "%d,%d", &p->x, &p->y) != 2) {
    free(p);
    return -1;
  }
  *out = uvw_value_opaque(p, &point_ops);
  return 0;
}

Test(manifest_encode, every_value_kind_round_trips) {
  cr_assert_eq(uvw_codec_register("test.point", point_encode, point_decode, NULL), 0);
  point_t *pt = malloc(sizeof *pt);
  pt->x = -3;
  pt->y = 40;
  uvw_value_t *vals[] = {uvw_value_nil(),
                         uvw_value_bool(1),
                         uvw_value_bool(0),
                         uvw_value_int(INT64_MIN),
                         uvw_value_int(INT64_MAX),
                         uvw_value_int(-1),
                         uvw_value_double(-0.0),
                         uvw_value_double(INFINITY),
                         uvw_value_double(3.25),
                         uvw_value_string("a\0b", 3),
                         uvw_value_string("", 0),
                         uvw_value_bytes("\xff\x00\x01", 3),
                         uvw_value_opaque(pt, &point_ops)};
  const Uvwool__Value__KindCase wire_kind[] = {
      UVWOOL__VALUE__KIND_NIL,          UVWOOL__VALUE__KIND_BOOL_VALUE,   UVWOOL__VALUE__KIND_BOOL_VALUE,
      UVWOOL__VALUE__KIND_INT_VALUE,    UVWOOL__VALUE__KIND_INT_VALUE,    UVWOOL__VALUE__KIND_INT_VALUE,
      UVWOOL__VALUE__KIND_DOUBLE_VALUE, UVWOOL__VALUE__KIND_DOUBLE_VALUE, UVWOOL__VALUE__KIND_DOUBLE_VALUE,
      UVWOOL__VALUE__KIND_STRING_VALUE, UVWOOL__VALUE__KIND_STRING_VALUE, UVWOOL__VALUE__KIND_BYTES_VALUE,
      UVWOOL__VALUE__KIND_OPAQUE};
  size_t n = sizeof vals / sizeof *vals;
  const char *ns = tu_namespace();
  uvw_var_t *vars[16];
  uvw_context_t *ctx = wt_enter_new();
  for (size_t i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "k%02zu", i);
    vars[i] = declare(ns, name, NULL);
    cr_assert_eq(uvw_set(vars[i], vals[i], NULL), 0);
  }
  uint8_t *bytes;
  size_t len;
  encode(NULL, &bytes, &len);
  wt_leave(ctx);
  /* The language-neutral encoding, checked with protobuf-c. */
  Uvwool__ChainManifest *m = wt_unpack(bytes, len);
  cr_assert_eq(m->n_entries, n);
  for (size_t i = 0; i < n; i++) cr_assert_eq(m->entries[i]->value->kind_case, wire_kind[i], "kind of k%02zu", i);
  cr_assert_eq(m->entries[3]->value->int_value, INT64_MIN);
  cr_assert_eq(m->entries[9]->value->string_value.len, 3, "embedded NUL kept");
  cr_assert_str_eq(m->entries[12]->value->opaque->codec, "test.point");
  cr_assert_eq(m->entries[12]->value->opaque->data.len, 5);
  cr_assert_eq(memcmp(m->entries[12]->value->opaque->data.data, "-3,40", 5), 0);
  uvwool__chain_manifest__free_unpacked(m, NULL);
  /* And back through uvwool into a fresh context. */
  uvw_manifest_t *mm;
  cr_assert_eq(uvw_manifest_decode(bytes, len, &mm), 0);
  ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(mm), 0);
  for (size_t i = 0; i < n; i++) {
    uvw_value_t *got;
    cr_assert_eq(uvw_get(vars[i], &got), 0);
    if (i == 12) {
      const point_t *q = uvw_value_as_opaque(got);
      cr_assert_eq(uvw_value_opaque_ops(got), &point_ops);
      cr_assert_eq(q->x, -3);
      cr_assert_eq(q->y, 40);
    } else {
      cr_assert(uvw_value_equal(got, vals[i]), "k%02zu round trips", i);
    }
  }
  cr_assert(signbit(uvw_value_as_double(uvw_context_lookup(ctx, vars[6]))), "-0.0 keeps its sign");
  wt_leave(ctx);
  uvw_manifest_free(mm);
  free(bytes);
  for (size_t i = 0; i < n; i++) uvw_value_unref(vals[i]);
}

Test(manifest_encode, given_context_is_encoded_without_entering_it) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(v, uvw_value_int(5));
  cr_assert_eq(uvw_context_exit(ctx), 0);
  uint8_t *bytes;
  size_t len;
  encode(ctx, &bytes, &len);
  Uvwool__ChainManifest *m = wt_unpack(bytes, len);
  cr_assert_eq(m->n_entries, 1);
  cr_assert_eq(m->entries[0]->value->int_value, 5);
  uvwool__chain_manifest__free_unpacked(m, NULL);
  free(bytes);
  uvw_context_unref(ctx);
}

/* ---- the map's memo: an unchanged context is encoded once ---- */

static const uvw__map_memo_t *memo_of(uvw_context_t *ctx) { return uvw__map_memo(ctx->map); }

static int64_t entry_int(const uint8_t *bytes, size_t len, const char *name) {
  Uvwool__ChainManifest *m = wt_unpack(bytes, len);
  int64_t got = -1;
  for (size_t i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, name) == 0 && m->entries[i]->value) got = m->entries[i]->value->int_value;
  uvwool__chain_manifest__free_unpacked(m, NULL);
  return got;
}

Test(manifest_encode, an_unchanged_map_is_encoded_from_its_memo_and_a_set_drops_it) {
  uvw_var_t *a = tu_var("a", NULL), *b = tu_var("b", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(a, uvw_value_int(1));
  wt_set(b, uvw_value_int(2));
  cr_assert_null(memo_of(ctx));
  uint8_t *first, *again, *changed;
  size_t flen, alen, clen;
  encode(NULL, &first, &flen);
  cr_assert_not_null(memo_of(ctx), "the first encode keeps the entries with the map");
  encode(NULL, &again, &alen);
  cr_assert_eq(alen, flen);
  cr_assert_eq(memcmp(again, first, flen), 0, "the memo gives exactly the bytes the packer gave");
  wt_set(b, uvw_value_int(3)); /* in place: the context alone holds its map */
  cr_assert_null(memo_of(ctx), "a change in place drops the memo");
  encode(NULL, &changed, &clen);
  cr_assert_eq(entry_int(changed, clen, "b"), 3);
  cr_assert_eq(entry_int(changed, clen, "a"), 1);
  free(first);
  free(again);
  free(changed);
  wt_leave(ctx);
}

Test(manifest_encode, a_copy_keeps_the_memo_of_the_map_it_shares) {
  uvw_var_t *a = tu_var("a", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(a, uvw_value_int(1));
  uint8_t *bytes;
  size_t len;
  encode(NULL, &bytes, &len);
  free(bytes);
  uvw_context_t *copy = uvw_context_copy(ctx);
  wt_set(a, uvw_value_int(2)); /* the map is shared: the set builds a new one */
  cr_assert_null(memo_of(ctx));
  cr_assert_not_null(memo_of(copy), "the shared map did not change, nor did its memo");
  encode(copy, &bytes, &len);
  cr_assert_eq(entry_int(bytes, len, "a"), 1, "the copy still encodes its own value");
  free(bytes);
  encode(NULL, &bytes, &len);
  cr_assert_eq(entry_int(bytes, len, "a"), 2);
  free(bytes);
  uvw_context_unref(copy);
  wt_leave(ctx);
}

Test(manifest_encode, a_policy_change_is_not_hidden_by_a_memo) {
  uvw_var_t *keep = tu_var("keep", NULL), *secret = tu_var("secret", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(keep, uvw_value_int(1));
  wt_set(secret, uvw_value_int(2));
  uint8_t *bytes;
  size_t len;
  encode(NULL, &bytes, &len);
  cr_assert_eq(entry_int(bytes, len, "secret"), 2);
  free(bytes);
  cr_assert_eq(uvw_var_set_policy(secret, UVW_PROPAGATE_FORK | UVW_PROPAGATE_THREAD), 0);
  encode(NULL, &bytes, &len);
  cr_assert_eq(entry_int(bytes, len, "secret"), -1, "opted out of the wire since the memo was made");
  cr_assert_eq(entry_int(bytes, len, "keep"), 1);
  free(bytes);
  wt_leave(ctx);
}

Test(manifest_encode, pending_resets_are_carried_past_a_memo) {
  uvw_var_t *a = tu_var("a", NULL), *r = tu_var("r", NULL);
  uvw_context_t *ctx = wt_enter_new();
  wt_set(a, uvw_value_int(1));
  uint8_t *bytes;
  size_t len;
  encode(NULL, &bytes, &len);
  free(bytes);
  wt_set_reset(r); /* binds then unbinds r: the map is back to {a}, with a reset pending */
  for (int round = 0; round < 2; round++) {
    encode(NULL, &bytes, &len);
    Uvwool__ChainManifest *m = wt_unpack(bytes, len);
    cr_assert_eq(m->n_entries, 2, "a, and r's pending reset (round %d)", round);
    cr_assert_str_eq(m->entries[1]->name, "r");
    cr_assert_null(m->entries[1]->value);
    uvwool__chain_manifest__free_unpacked(m, NULL);
    free(bytes);
  }
  wt_leave(ctx);
}

Test(manifest_encode, opaque_values_get_no_memo) {
  uvw_var_t *p = tu_var("p", NULL);
  cr_assert_eq(uvw_codec_register("test.point", point_encode, point_decode, NULL), 0);
  point_t *pt = malloc(sizeof *pt);
  pt->x = 1;
  pt->y = 2;
  uvw_context_t *ctx = wt_enter_new();
  wt_set(p, uvw_value_opaque(pt, &point_ops));
  uint8_t *bytes;
  size_t len;
  encode(NULL, &bytes, &len);
  cr_assert_null(memo_of(ctx), "a codec's output is not the map's alone (a codec may change)");
  free(bytes);
  wt_leave(ctx);
}

/* The bytes written by hand are exactly protobuf-c's pack of the same
 * manifest: every built-in kind at its edges, a pending reset, and lengths
 * that take a two- or three-byte varint (a 200-byte name, a 20,000-byte
 * string). */
Test(manifest_encode, the_bytes_are_those_protobuf_c_packs) {
  char ns[64];
  snprintf(ns, sizeof ns, "%s", tu_namespace());
  static char long_name[201], long_text[20001];
  memset(long_name, 'n', 200);
  memset(long_text, 't', 20000);
  static const int64_t ints[] = {0, 1, -1, 63, -64, 64, 8191, -8192, INT64_MAX, INT64_MIN};
  static const double doubles[] = {0.0, -0.0, 1.5, -1e308, INFINITY, -INFINITY};
  uvw_context_t *ctx = wt_enter_new();
  wt_manifest_t w;
  char id[33] = ""; /* known once the first set arms the context */
  wt_init(&w, id);
  char names[40][8];
  size_t k = 0;
  /* Names in bytewise order ("k00" < "k01" < ... < long_name): the
   * encoder sorts, the hand-built message is already sorted. */
#define NEXT(with) (snprintf(names[k], sizeof names[k], "k%02zu", k), wt_entry(&w, ns, names[k], with))
#define VAR() declare(ns, names[k++], NULL)
  for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
    wt_int(NEXT(1), ints[i]);
    wt_set(VAR(), uvw_value_int(ints[i]));
  }
  for (size_t i = 0; i < sizeof doubles / sizeof *doubles; i++) {
    Uvwool__Value *v = NEXT(1);
    v->kind_case = UVWOOL__VALUE__KIND_DOUBLE_VALUE;
    v->double_value = doubles[i];
    wt_set(VAR(), uvw_value_double(doubles[i]));
  }
  for (int b = 0; b < 2; b++) {
    Uvwool__Value *v = NEXT(1);
    v->kind_case = UVWOOL__VALUE__KIND_BOOL_VALUE;
    v->bool_value = b;
    wt_set(VAR(), uvw_value_bool(b));
  }
  Uvwool__Value *nil = NEXT(1);
  nil->kind_case = UVWOOL__VALUE__KIND_NIL;
  nil->nil = 1;
  wt_set(VAR(), uvw_value_nil());
  wt_string(NEXT(1), "");
  wt_set(VAR(), uvw_value_cstring(""));
  wt_string(NEXT(1), long_text);
  wt_set(VAR(), uvw_value_cstring(long_text));
  Uvwool__Value *bytes = NEXT(1);
  bytes->kind_case = UVWOOL__VALUE__KIND_BYTES_VALUE;
  bytes->bytes_value.data = (uint8_t *)"\0\1\2";
  bytes->bytes_value.len = 3;
  wt_set(VAR(), uvw_value_bytes("\0\1\2", 3));
  NEXT(0);
  wt_set_reset(VAR());
  wt_string(wt_entry(&w, ns, long_name, 1), "x");
  wt_set(declare(ns, long_name, NULL), uvw_value_cstring("x"));
#undef NEXT
#undef VAR
  cr_assert_eq(uvw_context_chain_id(ctx, id), 0);
  size_t want_len;
  uint8_t *want = wt_pack_manifest(&w, &want_len);
  uint8_t *got;
  size_t got_len;
  encode(NULL, &got, &got_len);
  cr_assert_eq(got_len, want_len, "%zu bytes, protobuf-c packs %zu", got_len, want_len);
  cr_assert_eq(memcmp(got, want, want_len), 0, "the same bytes as protobuf-c's pack");
  uvw_free(got);
  free(want);
  wt_leave(ctx);
}
