/* docs/testing.md row 26: manifest decode. Inputs are built with protobuf-c
 * directly. Decoding must never touch a live context. */
#include "context.h"
#include "var.h"
#include "wiretest.h"

#define ID "0123456789abcdef0123456789abcdef"

/* A live armed context whose identity and bindings we check after every
 * decode: decoding is pure. */
typedef struct {
  uvw_context_t *ctx;
  const void *chain;
  size_t size;
  uvw_var_t *var;
} live_t;

static live_t live_armed(void) {
  live_t l = {wt_enter_new(), NULL, 0, tu_var("live", NULL)};
  wt_set(l.var, uvw_value_int(42));
  l.chain = uvw_context_chain(l.ctx);
  l.size = uvw_context_size(l.ctx);
  return l;
}
static void live_check(const live_t *l) {
  cr_assert_eq(uvw_context_chain(l->ctx), l->chain, "chain record untouched");
  cr_assert_eq(uvw_context_size(l->ctx), l->size);
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(l->ctx, l->var)), 42);
  cr_assert_eq(uvw_context_pending_reset_count(l->ctx), 0);
}

static uvw_manifest_t *decode_ok(wt_manifest_t *w) {
  size_t len;
  uint8_t *b = wt_pack_manifest(w, &len);
  uvw_manifest_t *m = NULL;
  int rc = uvw_manifest_decode(b, len, &m);
  free(b);
  cr_assert_eq(rc, 0, "decode: %s", uvw_error_message(uvw_last_error()));
  return m;
}
static int decode_rc(wt_manifest_t *w) {
  size_t len;
  uint8_t *b = wt_pack_manifest(w, &len);
  uvw_manifest_t *m = (uvw_manifest_t *)1;
  int rc = uvw_manifest_decode(b, len, &m);
  free(b);
  if (rc == 0) uvw_manifest_free(m);
  else cr_assert_null(m, "no manifest on failure");
  return rc;
}

Test(manifest_decode, values_and_resets) {
  live_t l = live_armed();
  uvw_var_t *a = tu_var("a", NULL);
  const char *ns = uvw_var_namespace(a);
  uvw_var_t *r;
  cr_assert_eq(uvw_var_declare(ns, "r", NULL, &r), 0);
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "a", 1), "hello");
  wt_entry(&w, ns, "r", 0);
  uvw_manifest_t *m = decode_ok(&w);
  live_check(&l);
  char id[33];
  cr_assert_eq(uvw_manifest_id(m, id), 0);
  cr_assert_str_eq(id, ID);
  cr_assert_eq(uvw_manifest_entry_count(m), 2);
  cr_assert_eq(uvw_manifest_entry_var(m, 0), a);
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 0)), "hello");
  cr_assert_eq(uvw_manifest_entry_var(m, 1), r);
  cr_assert_null(uvw_manifest_entry_value(m, 1), "reset entry");
  uvw_manifest_free(m);
  wt_leave(l.ctx);
}

Test(manifest_decode, dashed_and_uppercase_ids_and_empty_id) {
  wt_manifest_t w;
  wt_init(&w, "01234567-89AB-CDEF-0123-456789ABCDEF");
  uvw_manifest_t *m = decode_ok(&w);
  char id[33];
  cr_assert_eq(uvw_manifest_id(m, id), 0);
  cr_assert_str_eq(id, ID);
  uvw_manifest_free(m);
  wt_init(&w, "");
  m = decode_ok(&w);
  cr_assert_eq(uvw_manifest_id(m, id), UVW_EINVAL, "empty id: none, mount mints one");
  uvw_manifest_free(m);
}

Test(manifest_decode, malformed_id_is_always_an_error) {
  live_t l = live_armed();
  const char *bad[] = {"xyz", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdef0",
                       "0123456789abcdeg0123456789abcdef", "0123456-789ab-cdef-0123-456789abcdef",
                       "01234567-89ab-cdef-0123_456789abcdef"};
  for (int strict = 0; strict < 2; strict++) {
    uvw_set_strict(strict);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
      wt_manifest_t w;
      wt_init(&w, bad[i]);
      wt_int(wt_entry(&w, "x", "y", 1), 1);
      cr_assert_eq(decode_rc(&w), UVW_EMALFORMED, "id '%s'", bad[i]);
      const uvw_error_t *e = uvw_last_error();
      cr_assert_eq(uvw_error_kind(e), UVW_KIND_SERIALIZATION_ERROR);
      cr_assert_str_eq(uvw_error_field(e, "id"), bad[i]);
      cr_assert_not_null(uvw_error_field(e, "reason"));
    }
  }
  uvw_set_strict(0);
  live_check(&l);
  wt_leave(l.ctx);
}

Test(manifest_decode, undeclared_key_becomes_a_stub_and_declaration_takes_it_over) {
  const char *ns = tu_namespace();
  cr_assert_null(uvw_var_find(ns, "ghost"));
  size_t stubs = uvw__var_stub_count();
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "ghost", 1), "boo");
  uvw_manifest_t *m = decode_ok(&w);
  uvw_var_t *ghost = uvw_var_find(ns, "ghost");
  cr_assert_not_null(ghost);
  cr_assert(uvw_var_is_stub(ghost));
  cr_assert_eq(uvw__var_stub_count(), stubs + 1);
  cr_assert_eq(uvw_manifest_entry_var(m, 0), ghost);
  uvw_context_t *ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  uvw_var_t *declared;
  cr_assert_eq(uvw_var_declare(ns, "ghost", NULL, &declared), 0);
  cr_assert_eq(declared, ghost, "same identity");
  cr_assert(!uvw_var_is_stub(declared));
  uvw_value_t *got;
  cr_assert_eq(uvw_get(declared, &got), 0);
  cr_assert_str_eq(uvw_value_as_string(got), "boo");
  wt_leave(ctx);
  uvw_manifest_free(m);
}

Test(manifest_decode, duplicate_warns_and_first_wins) {
  uvw_var_t *a = tu_var("a", NULL);
  const char *ns = uvw_var_namespace(a);
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "z", 1), "after");  /* out of order on purpose */
  wt_string(wt_entry(&w, ns, "a", 1), "first");
  wt_string(wt_entry(&w, ns, "a", 1), "second");
  wt_entry(&w, ns, "a", 0);                        /* a reset, also a duplicate */
  wt_capture();
  uvw_manifest_t *m = decode_ok(&w);
  cr_assert_eq(wt_nwarnings, 2);
  for (size_t i = 0; i < 2; i++) {
    cr_assert_eq(uvw_error_kind(wt_warnings[i]), UVW_KIND_SERIALIZATION_WARNING);
    cr_assert_str_eq(uvw_error_field(wt_warnings[i], "name"), "a");
    cr_assert_not_null(strstr(uvw_error_message(wt_warnings[i]), "duplicate"));
  }
  cr_assert_eq(uvw_manifest_entry_count(m), 2);
  cr_assert_eq(uvw_manifest_entry_var(m, 0), a, "sorted: a before z");
  cr_assert_str_eq(uvw_value_as_string(uvw_manifest_entry_value(m, 0)), "first");
  cr_assert_str_eq(uvw_var_name(uvw_manifest_entry_var(m, 1)), "z");
  uvw_manifest_free(m);
  wt_release();
}

Test(manifest_decode, bad_value_warns_and_is_skipped_without_reset) {
  live_t l = live_armed();
  uvw_var_t *good = tu_var("good", NULL);
  const char *ns = uvw_var_namespace(good);
  wt_manifest_t w;
  wt_init(&w, ID);
  Uvwool__Value *v = wt_entry(&w, ns, "no_codec", 1);
  v->kind_case = UVWOOL__VALUE__KIND_OPAQUE;
  v->opaque = &w.opaques[0];
  uvwool__opaque__init(v->opaque);
  v->opaque->codec = "nobody.knows";
  wt_entry(&w, ns, "no_kind", 1); /* a Value with no member set */
  wt_int(wt_entry(&w, ns, "good", 1), 9);
  wt_entry(&w, "", "nameless_ns", 1);
  wt_capture();
  uvw_manifest_t *m = decode_ok(&w);
  cr_assert_eq(wt_nwarnings, 3);
  cr_assert_str_eq(uvw_error_field(wt_warnings[0], "name"), "no_codec");
  cr_assert_not_null(strstr(uvw_error_message(wt_warnings[0]), "nobody.knows"));
  cr_assert_str_eq(uvw_error_field(wt_warnings[1], "name"), "no_kind");
  cr_assert_eq(uvw_manifest_entry_count(m), 1, "skipped, not turned into resets");
  cr_assert_eq(uvw_manifest_entry_var(m, 0), good);
  live_check(&l);
  /* Mounted over a binding, a skipped entry leaves it alone. */
  uvw_var_t *nc;
  cr_assert_eq(uvw_var_declare(ns, "no_codec", NULL, &nc), 0);
  wt_set(nc, uvw_value_int(1));
  cr_assert_eq(uvw_manifest_mount(m), 0);
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(l.ctx, nc)), 1);
  cr_assert(!uvw_context_has_pending_reset(l.ctx, ns, "no_codec"));
  uvw_manifest_free(m);
  wt_release();
  wt_leave(l.ctx);
}

Test(manifest_decode, strict_mode_aggregates) {
  live_t l = live_armed();
  const char *ns = tu_namespace();
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "a", 1), 1);
  wt_int(wt_entry(&w, ns, "a", 1), 2);
  wt_entry(&w, ns, "b", 1);
  uvw_set_strict(1);
  wt_capture();
  cr_assert_eq(decode_rc(&w), UVW_ECHAINSERIALIZE);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_CHAIN_SERIALIZATION_ERROR);
  cr_assert_eq(uvw_error_warning_count(e), 2);
  cr_assert_str_eq(uvw_error_field(uvw_error_warning(e, 0), "name"), "b", "bad value");
  cr_assert_str_eq(uvw_error_field(uvw_error_warning(e, 1), "name"), "a", "duplicate");
  cr_assert_eq(wt_nwarnings, 0);
  uvw_set_strict(0);
  wt_release();
  live_check(&l);
  wt_leave(l.ctx);
}

Test(manifest_decode, new_stubs_are_capped_per_decode_and_a_failed_decode_leaves_none) {
  live_t l = live_armed();
  const char *ns = tu_namespace();
  uvw_var_t *declared;
  cr_assert_eq(uvw_var_declare(ns, "declared", NULL, &declared), 0);
  size_t have = uvw_wire_stub_count();
  uvw_wire_set_stub_cap(2);
  cr_assert_eq(uvw_wire_stub_cap(), 2);
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "declared", 1), 0); /* declared keys never count */
  wt_int(wt_entry(&w, ns, "s1", 1), 1);
  wt_int(wt_entry(&w, ns, "s2", 1), 2);
  wt_int(wt_entry(&w, ns, "s3", 1), 3);
  cr_assert_eq(decode_rc(&w), UVW_ESTUBCAP);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_eq(uvw_error_kind(e), UVW_KIND_SERIALIZATION_ERROR);
  cr_assert_str_eq(uvw_error_field(e, "name"), "s3");
  cr_assert_str_eq(uvw_error_field(e, "cap"), "2");
  cr_assert_eq(uvw_wire_stub_count(), have, "the failed decode left no stub behind");
  cr_assert_null(uvw__var_lookup(ns, "s1"));
  /* Within the cap it decodes; the stubs live while the manifest holds
   * them, and a key alive already does not count again. */
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "s1", 1), 1);
  wt_int(wt_entry(&w, ns, "s2", 1), 2);
  uvw_manifest_t *m1 = decode_ok(&w);
  cr_assert_eq(uvw_wire_stub_count(), have + 2);
  wt_init(&w, ID);
  wt_int(wt_entry(&w, ns, "s1", 1), 1);
  wt_int(wt_entry(&w, ns, "s2", 1), 2);
  wt_int(wt_entry(&w, ns, "s3", 1), 3);
  uvw_manifest_t *m2 = decode_ok(&w);
  cr_assert_eq(uvw_manifest_entry_var(m2, 0), uvw_manifest_entry_var(m1, 0), "one identity while alive");
  cr_assert_eq(uvw_wire_stub_count(), have + 3);
  uvw_manifest_free(m1);
  cr_assert_eq(uvw_wire_stub_count(), have + 3, "m2 still holds all three");
  uvw_manifest_free(m2);
  cr_assert_eq(uvw_wire_stub_count(), have, "freed with the last holder");
  uvw_wire_set_stub_cap(0);
  cr_assert_eq(uvw_wire_stub_cap(), 128, "0 restores the default");
  live_check(&l);
  wt_leave(l.ctx);
}

Test(manifest_decode, oversized_truncated_and_garbage_input) {
  live_t l = live_armed();
  const char *ns = tu_namespace();
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "a", 1), "some value here");
  wt_string(wt_entry(&w, ns, "b", 1), "another value");
  size_t len;
  uint8_t *b = wt_pack_manifest(&w, &len);
  uvw_manifest_t *m;
  /* Every prefix: a clean error or (for prefixes that happen to end on a
   * field boundary) a valid shorter manifest; never a crash. A cut inside
   * the last entry is always malformed. */
  for (size_t cut = 0; cut < len; cut++) {
    int rc = uvw_manifest_decode(b, cut, &m);
    cr_assert(rc == 0 || rc == UVW_EMALFORMED, "prefix %zu: rc %d", cut, rc);
    if (rc == 0) uvw_manifest_free(m);
  }
  cr_assert_eq(uvw_manifest_decode(b, len - 1, &m), UVW_EMALFORMED);
  cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_SERIALIZATION_ERROR);
  cr_assert_not_null(uvw_error_field(uvw_last_error(), "reason"));
  uvw_wire_set_max_size(len - 1);
  cr_assert_eq(uvw_manifest_decode(b, len, &m), UVW_ETOOBIG);
  char size[32];
  snprintf(size, sizeof size, "%zu", len);
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "size"), size);
  uvw_wire_set_max_size(0);
  cr_assert_eq(uvw_manifest_decode(b, len, &m), 0, "fits again under the default");
  uvw_manifest_free(m);
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  cr_assert_eq(uvw_manifest_decode(garbage, sizeof garbage, &m), UVW_EMALFORMED);
  static const uint8_t wrong_type[] = {0x0a, 0x05, 'h', 'e'}; /* id string, length past the end */
  cr_assert_eq(uvw_manifest_decode(wrong_type, sizeof wrong_type, &m), UVW_EMALFORMED);
  static const uint8_t int_for_entries[] = {0x10, 0x01}; /* field 2 as varint */
  cr_assert_eq(uvw_manifest_decode(int_for_entries, sizeof int_for_entries, &m), UVW_EMALFORMED);
  cr_assert_eq(uvw_manifest_decode(NULL, 3, &m), UVW_EINVAL);
  free(b);
  live_check(&l);
  wt_leave(l.ctx);
}

Test(manifest_decode, receiver_policy_opt_out_is_ignored) {
  uvw_var_t *secret = tu_var("secret", NULL);
  cr_assert_eq(uvw_var_set_policy(secret, UVW_PROPAGATE_FORK), 0);
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, uvw_var_namespace(secret), "secret", 1), "injected");
  uvw_manifest_t *m = decode_ok(&w);
  cr_assert_eq(uvw_manifest_entry_count(m), 0);
  uvw_manifest_free(m);
}

/* ---- hostile manifests (issue 11): bounded keys, warnings, entries, stubs ---- */

/* A manifest of `count` empty entries ("\x12\x00" each). */
static uint8_t *empty_entries(size_t count, size_t *len) {
  uint8_t *b = malloc(2 * count + 1);
  for (size_t i = 0; i < count; i++) {
    b[2 * i] = 0x12;
    b[2 * i + 1] = 0;
  }
  *len = 2 * count;
  return b;
}

Test(manifest_decode, a_stub_lives_while_a_context_holds_it_and_is_freed_after) {
  const char *ns = tu_namespace();
  size_t have = uvw_wire_stub_count();
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "passing", 1), "through");
  uvw_manifest_t *m = decode_ok(&w);
  uvw_context_t *ctx = wt_enter_new();
  cr_assert_eq(uvw_manifest_mount(m), 0);
  uvw_manifest_free(m);
  cr_assert_eq(uvw_wire_stub_count(), have + 1, "the mounted context holds the stub");
  uvw_context_t *copy = uvw_context_copy(ctx);
  uvw_context_t *fork = uvw_context_fork(ctx, UVW_PROPAGATE_FORK);
  cr_assert_eq(uvw_context_exit(ctx), 0);
  uvw_context_unref(ctx);
  uvw_context_unref(copy);
  cr_assert_eq(uvw_wire_stub_count(), have + 1, "the fork still carries it");
  uvw_context_unref(fork);
  cr_assert_eq(uvw_wire_stub_count(), have, "no context holds it: freed");
  cr_assert_null(uvw__var_lookup(ns, "passing"));
}

Test(manifest_decode, a_stub_found_by_uvw_var_find_is_kept) {
  const char *ns = tu_namespace();
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, "found", 1), "x");
  uvw_manifest_t *m = decode_ok(&w);
  uvw_var_t *v = uvw_var_find(ns, "found");
  cr_assert_not_null(v);
  uvw_manifest_free(m);
  cr_assert_eq(uvw_var_find(ns, "found"), v, "a pointer handed out never dangles");
  cr_assert_str_eq(uvw_var_name(v), "found");
}

Test(manifest_decode, a_name_over_255_bytes_is_skipped_with_a_short_warning) {
  const char *ns = tu_namespace();
  size_t have = uvw_wire_stub_count();
  size_t big = (size_t)16 << 20;
  char *name = malloc(big + 1);
  memset(name, 'n', big);
  name[big] = '\0';
  char ok[256];
  memset(ok, 'k', 255);
  ok[255] = '\0';
  wt_capture();
  wt_manifest_t w;
  wt_init(&w, ID);
  wt_string(wt_entry(&w, ns, name, 1), "huge");
  wt_string(wt_entry(&w, ns, ok, 1), "fits");
  size_t len;
  uint8_t *b = wt_pack_manifest(&w, &len);
  free(name);
  uvw_wire_set_max_size((size_t)32 << 20);
  uvw_manifest_t *m;
  int rc = uvw_manifest_decode(b, len, &m);
  uvw_wire_set_max_size(0);
  free(b);
  cr_assert_eq(rc, 0, "%s", uvw_error_message(uvw_last_error()));
  cr_assert_eq(uvw_manifest_entry_count(m), 1, "only the 255-byte name is taken");
  cr_assert_eq(strlen(uvw_var_name(uvw_manifest_entry_var(m, 0))), 255);
  cr_assert_eq(wt_nwarnings, 1);
  cr_assert_lt(strlen(uvw_error_message(wt_warnings[0])), 200, "the warning does not copy the key");
  cr_assert_eq(uvw_wire_stub_count(), have + 1, "no stub for the 16 MiB name");
  uvw_manifest_free(m);
  wt_release();
}

Test(manifest_decode, warnings_are_aggregated_per_manifest) {
  size_t len;
  uint8_t *b = empty_entries(4000, &len);
  wt_capture();
  uvw_manifest_t *m;
  cr_assert_eq(uvw_manifest_decode(b, len, &m), 0);
  cr_assert_eq(uvw_manifest_entry_count(m), 0);
  cr_assert_eq(wt_nwarnings, 9, "the first eight and one summary, not 4000");
  cr_assert_str_eq(uvw_error_field(wt_warnings[8], "suppressed"), "3992");
  uvw_manifest_free(m);
  wt_release();
  /* Strict: one error of bounded size that still counts every failure. */
  uvw_set_strict(1);
  cr_assert_eq(uvw_manifest_decode(b, len, &m), UVW_ECHAINSERIALIZE);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_str_eq(uvw_error_field(e, "failures"), "4000");
  cr_assert_leq(uvw_error_warning_count(e), 9);
  void *enc;
  size_t elen;
  uvw_frame_t *f = uvw_frame_new(UVW_FRAME_EXCEPTION, 1);
  cr_assert_eq(uvw_frame_set_error(f, e), 0);
  cr_assert_eq(uvw_frame_encode(f, &enc, &elen), 0);
  cr_assert_lt(elen, 8192, "the Exception is small (%zu bytes)", elen);
  uvw_free(enc);
  uvw_frame_free(f);
  uvw_set_strict(0);
  free(b);
}

Test(manifest_decode, more_than_4096_entries_is_too_big) {
  size_t len;
  uint8_t *b = empty_entries(4097, &len);
  uvw_manifest_t *m = (uvw_manifest_t *)1;
  cr_assert_eq(uvw_manifest_decode(b, len, &m), UVW_ETOOBIG);
  cr_assert_null(m);
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "limit"), "4096");
  free(b);
  b = empty_entries(4096, &len);
  wt_capture();
  cr_assert_eq(uvw_manifest_decode(b, len, &m), 0);
  uvw_manifest_free(m);
  wt_release();
  free(b);
}
