/* Values a user cannot misuse by accident: the two natural patterns that
 * were use-after-free with the borrowed uvw_get, written with uvw_get_ref,
 * uvw_get_string, uvw_set_cstring and uvw_var_run, and the error paths of
 * those four (a code, a detail, nothing changed). Run under ASan. */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

static void assert_detail(int code) {
  const uvw_error_t *e = uvw_last_error();
  cr_assert_not_null(e);
  cr_assert_eq(uvw_error_code(e), code);
  cr_assert_gt(strlen(uvw_error_message(e)), 0);
}

/* Pattern 1: keep the old value across a set. The borrowed value dies at the
 * set (its release runs); the new reference keeps it alive and readable. */
Test(lifetime, borrowed_value_dies_at_the_next_set_as_documented) {
  uvw_var_t *var = tu_var("v", NULL);
  uvw_value_t *counted = tu_counted_value(), *other = uvw_value_int(2), *borrowed;
  cr_assert_eq(uvw_set(var, counted, NULL), 0);
  uvw_value_unref(counted); /* the context holds the only reference */
  cr_assert_eq(uvw_get(var, &borrowed), 0);
  size_t before = tu_released();
  cr_assert_eq(uvw_set(var, other, NULL), 0);
  cr_assert_eq(tu_released(), before + 1, "the borrowed value is gone after the set");
  uvw_value_unref(other);
}

Test(lifetime, get_ref_keeps_the_old_value_across_a_set) {
  uvw_var_t *var = tu_var("v", NULL);
  uvw_value_t *first = uvw_value_cstring("first"), *kept = NULL;
  cr_assert_eq(uvw_set(var, first, NULL), 0);
  uvw_value_unref(first);
  cr_assert_eq(uvw_get_ref(var, &kept), 0);
  cr_assert_eq(uvw_set_cstring(var, "second", NULL), 0);
  cr_assert_str_eq(uvw_value_as_string(kept), "first");
  uvw_value_t *now;
  cr_assert_eq(uvw_get(var, &now), 0);
  cr_assert_str_eq(uvw_value_as_string(now), "second");
  uvw_value_unref(kept);

  uvw_value_t *counted = tu_counted_value();
  cr_assert_eq(uvw_set(var, counted, NULL), 0);
  uvw_value_unref(counted);
  cr_assert_eq(uvw_get_ref(var, &kept), 0);
  size_t before = tu_released();
  cr_assert_eq(uvw_set_cstring(var, "third", NULL), 0);
  cr_assert_eq(tu_released(), before, "a new reference outlives the binding");
  uvw_value_unref(kept);
  cr_assert_eq(tu_released(), before + 1);
}

/* Pattern 2: keep a string past the callback that read it. The callback
 * runs in a context of its own, released after it returns. */
typedef struct {
  uvw_var_t *var;
  char buf[32];
  size_t len;
  uvw_value_t *ref;
  int rc_string, rc_ref;
} reader_t;

static void request_callback(void *arg) {
  reader_t *r = arg;
  uvw_set_cstring(r->var, "request-17", NULL);
  r->rc_string = uvw_get_string(r->var, r->buf, sizeof r->buf, &r->len);
  r->rc_ref = uvw_get_ref(r->var, &r->ref);
}

Test(lifetime, string_outlives_the_callback_that_read_it) {
  reader_t r = {.var = tu_var("request", NULL)};
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_run(ctx, request_callback, &r), 0);
  uvw_context_unref(ctx); /* the binding is gone with its context */
  cr_assert_eq(r.rc_string, 0);
  cr_assert_str_eq(r.buf, "request-17");
  cr_assert_eq(r.len, strlen("request-17"));
  cr_assert_eq(r.rc_ref, 0);
  cr_assert_str_eq(uvw_value_as_string(r.ref), "request-17");
  uvw_value_unref(r.ref);
}

Test(lifetime, get_string_copies_embedded_nuls_and_reports_the_true_length) {
  uvw_var_t *var = tu_var("v", NULL);
  uvw_value_t *v = uvw_value_string("a\0b", 3);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  char buf[8];
  size_t len = 0;
  cr_assert_eq(uvw_get_string(var, buf, 4, &len), 0, "3 bytes and the terminator fit in 4");
  cr_assert_eq(len, 3);
  cr_assert_eq(memcmp(buf, "a\0b\0", 4), 0);
  cr_assert_eq(uvw_get_string(var, buf, sizeof buf, NULL), 0, "len_out may be NULL");
}

Test(lifetime, get_string_reads_the_default) {
  uvw_value_t *d = uvw_value_cstring("fallback");
  uvw_var_t *var = tu_var("v", d);
  uvw_value_unref(d);
  char buf[16];
  size_t len;
  cr_assert_eq(uvw_get_string(var, buf, sizeof buf, &len), 0);
  cr_assert_str_eq(buf, "fallback");
}

/* ---- error paths: a code, a detail, nothing written or changed ----------- */

Test(lifetime, get_string_buffer_too_small_writes_nothing_and_says_the_size) {
  uvw_var_t *var = tu_var("v", NULL);
  uvw_set_cstring(var, "hello", NULL);
  char buf[8];
  memset(buf, 'x', sizeof buf);
  size_t len = 0;
  cr_assert_eq(uvw_get_string(var, buf, 5, &len), UVW_ENOBUFS, "5 bytes cannot hold \"hello\" and its NUL");
  assert_detail(UVW_ENOBUFS);
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "needed"), "6");
  cr_assert_eq(len, 6);
  for (size_t i = 0; i < sizeof buf; i++) cr_assert_eq(buf[i], 'x', "byte %zu untouched", i);
  cr_assert_eq(uvw_get_string(var, NULL, 0, &len), UVW_ENOBUFS, "the size query");
  cr_assert_eq(len, 6);
  cr_assert_eq(uvw_get_string(var, buf, 6, &len), 0);
  cr_assert_str_eq(buf, "hello");
  cr_assert_eq(len, 5);
}

Test(lifetime, get_string_of_a_non_string_is_a_clear_error) {
  uvw_var_t *var = tu_var("number", NULL);
  uvw_value_t *v = uvw_value_int(7);
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  char buf[8] = "unset";
  size_t len = 99;
  cr_assert_eq(uvw_get_string(var, buf, sizeof buf, &len), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_str_eq(uvw_error_field(e, "value_kind"), "int");
  cr_assert_not_null(strstr(uvw_error_message(e), "number"), "names the variable: %s", uvw_error_message(e));
  cr_assert_not_null(strstr(uvw_error_message(e), "not a string"));
  cr_assert_str_eq(buf, "unset");
  cr_assert_eq(len, 99);
}

Test(lifetime, null_arguments_and_unbound_variables) {
  uvw_var_t *var = tu_var("v", NULL);
  char buf[8] = "unset";
  uvw_value_t *out = (uvw_value_t *)&buf; /* a marker: must stay as it is */
  cr_assert_eq(uvw_get_ref(NULL, &out), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(uvw_get_ref(var, NULL), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(uvw_get_ref(var, &out), UVW_ELOOKUP);
  assert_detail(UVW_ELOOKUP);
  cr_assert_eq(out, (uvw_value_t *)&buf);
  cr_assert_eq(uvw_get_string(NULL, buf, sizeof buf, NULL), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(uvw_get_string(var, NULL, 4, NULL), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(uvw_get_string(var, buf, sizeof buf, NULL), UVW_ELOOKUP);
  assert_detail(UVW_ELOOKUP);
  cr_assert_str_eq(buf, "unset");
}

Test(lifetime, set_cstring_errors_change_nothing) {
  uvw_var_t *var = tu_var("v", NULL);
  uvw_context_t *ctx = uvw_context_current();
  uvw_token_t *token = (uvw_token_t *)&var;
  cr_assert_eq(uvw_set_cstring(var, NULL, &token), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(uvw_set_cstring(NULL, "x", &token), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(token, (uvw_token_t *)&var, "no token on error");
  cr_assert_eq(uvw_context_size(ctx), 0);
  cr_assert_not(uvw_context_is_armed(ctx), "a failed set does not arm");

  cr_assert_eq(uvw_set_cstring(var, "x", &token), 0);
  char buf[4];
  cr_assert_eq(uvw_get_string(var, buf, sizeof buf, NULL), 0);
  cr_assert_str_eq(buf, "x");
  cr_assert_eq(uvw_reset(var, token), 0);
  uvw_token_free(token);
  cr_assert_eq(uvw_context_lookup(ctx, var), NULL, "the token restores the unbound state");
}

/* ---- uvw_var_run ---------------------------------------------------------- */

typedef struct {
  uvw_var_t *var;
  char seen[16];
  int calls;
} scoped_t;

static void scoped_body(void *arg) {
  scoped_t *s = arg;
  s->calls++;
  if (uvw_get_string(s->var, s->seen, sizeof s->seen, NULL) != 0) strcpy(s->seen, "error");
}

Test(lifetime, var_run_binds_for_the_call_only) {
  scoped_t s = {.var = tu_var("scoped", NULL)};
  uvw_set_cstring(s.var, "outer", NULL);
  uvw_value_t *inner = uvw_value_cstring("inner");
  cr_assert_eq(uvw_var_run(s.var, inner, scoped_body, &s), 0);
  uvw_value_unref(inner);
  cr_assert_eq(s.calls, 1);
  cr_assert_str_eq(s.seen, "inner");
  char buf[16];
  cr_assert_eq(uvw_get_string(s.var, buf, sizeof buf, NULL), 0);
  cr_assert_str_eq(buf, "outer", "restored after the call");

  scoped_t u = {.var = tu_var("unbound", NULL)};
  uvw_value_t *v = uvw_value_cstring("only-inside");
  cr_assert_eq(uvw_var_run(u.var, v, scoped_body, &u), 0);
  uvw_value_unref(v);
  cr_assert_str_eq(u.seen, "only-inside");
  uvw_value_t *out;
  cr_assert_eq(uvw_get(u.var, &out), UVW_ELOOKUP, "unbound again after the call");
}

/* What the header documents: whatever fn does to var (a set it leaves, or
 * a set and reset with its own token), the call returns 0 and var has its
 * value from before again. */
static void rebinds_and_leaves(void *arg) {
  scoped_t *s = arg;
  s->calls++;
  uvw_set_cstring(s->var, "left-by-fn", NULL);
}
static void sets_and_resets_its_own(void *arg) {
  scoped_t *s = arg;
  uvw_token_t *tok;
  s->calls++;
  if (uvw_set_cstring(s->var, "fn's own", &tok) != 0) return;
  if (uvw_reset(s->var, tok) != 0) strcpy(s->seen, "reset failed");
  uvw_token_free(tok);
}

Test(lifetime, var_run_restores_the_value_before_whatever_fn_did) {
  scoped_t s = {.var = tu_var("scoped", NULL)};
  uvw_set_cstring(s.var, "outer", NULL);
  uvw_value_t *inner = uvw_value_cstring("inner");
  char buf[16];
  cr_assert_eq(uvw_var_run(s.var, inner, rebinds_and_leaves, &s), 0);
  cr_assert_eq(uvw_get_string(s.var, buf, sizeof buf, NULL), 0);
  cr_assert_str_eq(buf, "outer", "fn's unreset binding is discarded");
  cr_assert_eq(uvw_var_run(s.var, inner, sets_and_resets_its_own, &s), 0, "fn's own reset is no error");
  cr_assert_str_eq(s.seen, "", "fn's reset of its own token succeeded");
  cr_assert_eq(uvw_get_string(s.var, buf, sizeof buf, NULL), 0);
  cr_assert_str_eq(buf, "outer");
  cr_assert_eq(s.calls, 2);
  uvw_value_unref(inner);
}

Test(lifetime, var_run_set_errors_do_not_call_fn_and_change_nothing) {
  scoped_t s = {.var = tu_var("scoped", NULL)};
  uvw_context_t *ctx = uvw_context_current();
  uvw_value_t *v = uvw_value_int(1);
  cr_assert_eq(uvw_var_run(s.var, NULL, scoped_body, &s), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(uvw_var_run(NULL, v, scoped_body, &s), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(uvw_var_run(s.var, v, NULL, &s), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(uvw_var_run(s.var, uvw_value_missing(), scoped_body, &s), UVW_EINVAL);
  assert_detail(UVW_EINVAL);
  cr_assert_eq(s.calls, 0);
  cr_assert_eq(uvw_context_size(ctx), 0);
  cr_assert_not(uvw_context_is_armed(ctx));
  uvw_value_unref(v);
}

/* ---- uvw_context_lookup of a context this thread has not entered ---------- */

Test(lifetime, foreign_lookup_keeps_the_value_until_the_next_foreign_lookup) {
  uvw_var_t *var = tu_var("v", NULL);
  uvw_context_t *ctx = uvw_context_new();
  uvw_value_t *counted = tu_counted_value(), *other = uvw_value_int(2);
  uvw_context_enter(ctx);
  uvw_set(var, counted, NULL);
  uvw_value_unref(counted); /* the context holds the only reference */
  uvw_context_exit(ctx);

  /* Entered nowhere: this lookup reads it as any other thread would. */
  uvw_value_t *seen = uvw_context_lookup(ctx, var);
  cr_assert_eq(seen, counted);
  size_t before = tu_released();
  uvw_context_enter(ctx);
  uvw_set(var, other, NULL); /* the binding goes; the value must not */
  uvw_context_exit(ctx);
  cr_assert_eq(tu_released(), before, "kept alive for the reader");
  cr_assert_eq(uvw_value_opaque_ops(seen), &tu_counted_ops, "still readable");
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, var)), 2);
  cr_assert_eq(tu_released(), before + 1, "released at the next foreign lookup");
  uvw_value_unref(other);
  uvw_context_unref(ctx);
}
