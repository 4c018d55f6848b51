/* set / reset and tokens (docs/testing.md rows 2, 3, 5, 12). */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

static uvw_context_t *ctx;
static void enter_fresh(void) {
  ctx = uvw_context_new();
  cr_assert_eq(uvw_context_enter(ctx), 0);
}
static void leave(void) {
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
}

TestSuite(tokens, .init = enter_fresh, .fini = leave);

/* Row 2. */
Test(tokens, set_rebinds_reset_restores_first_set_arms_token_single_use) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_value_t *a = uvw_value_int(1), *out;
  uvw_token_t *t;
  char id[33] = "";
  cr_assert_neq(uvw_context_chain_id(ctx, id), 0, "unarmed: no id yet");
  cr_assert_eq(uvw_set(v, a, &t), 0);
  cr_assert(uvw_context_is_armed(ctx));
  cr_assert_eq(uvw_context_chain_id(ctx, id), 0);
  cr_assert_eq(strlen(id), 32);
  cr_assert_eq(strspn(id, "0123456789abcdef"), 32, "lowercase hex: %s", id);
  cr_assert_eq(uvw_get(v, &out), 0);
  cr_assert_eq(out, a);
  cr_assert_eq(uvw_reset(v, t), 0);
  cr_assert_eq(uvw_get(v, &out), UVW_ELOOKUP, "restored to unbound");
  cr_assert(uvw_token_used(t));
  cr_assert_eq(uvw_reset(v, t), UVW_ETOKEN_USED, "single use");
  char id2[33];
  uvw_context_chain_id(ctx, id2);
  cr_assert_str_eq(id, id2, "reset keeps the chain id");
  uvw_token_free(t);
  uvw_value_unref(a);
}

Test(tokens, second_set_keeps_chain_id_and_reset_restores_prior_value) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_value_t *a = uvw_value_int(1), *b = uvw_value_int(2), *out;
  uvw_token_t *t1, *t2;
  char id1[33], id2[33];
  uvw_set(v, a, &t1);
  uvw_context_chain_id(ctx, id1);
  uvw_set(v, b, &t2);
  uvw_context_chain_id(ctx, id2);
  cr_assert_str_eq(id1, id2);
  cr_assert_eq(uvw_reset(v, t2), 0);
  cr_assert_eq(uvw_get(v, &out), 0);
  cr_assert_eq(uvw_value_as_int(out), 1);
  cr_assert_eq(uvw_context_pending_reset_count(ctx), 0, "restored to a value: no pending reset");
  cr_assert_eq(uvw_reset(v, t1), 0);
  cr_assert(uvw_context_has_pending_reset(ctx, uvw_var_namespace(v), "v"), "reset to no value is pending");
  uvw_set(v, b, NULL);
  cr_assert_not(uvw_context_has_pending_reset(ctx, uvw_var_namespace(v), "v"), "set clears the pending reset");
  uvw_token_free(t1);
  uvw_token_free(t2);
  uvw_value_unref(a);
  uvw_value_unref(b);
}

/* Row 3: each rejection with its own error, in the order used -> var -> context. */
Test(tokens, reset_rejections_in_order_used_var_context) {
  uvw_var_t *v = tu_var("v", NULL), *w = tu_var("w", NULL);
  uvw_value_t *a = uvw_value_int(1), *out;
  uvw_token_t *t;
  uvw_set(v, a, &t);

  /* wrong var only */
  cr_assert_eq(uvw_reset(w, t), UVW_ETOKEN_VAR);
  cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_VALUE_ERROR);
  /* wrong context only */
  uvw_context_t *other = uvw_context_copy(ctx);
  uvw_context_exit(ctx);
  uvw_context_enter(other);
  cr_assert_eq(uvw_reset(v, t), UVW_ETOKEN_CONTEXT, "a copy is a different context object");
  /* wrong var and wrong context: var is reported first */
  cr_assert_eq(uvw_reset(w, t), UVW_ETOKEN_VAR);
  uvw_context_exit(other);
  uvw_context_enter(ctx);
  cr_assert_eq(uvw_get(v, &out), 0, "failed resets changed nothing");
  cr_assert_eq(out, a);
  cr_assert_eq(uvw_reset(v, t), 0);
  /* used, wrong var and wrong context together: used is reported first */
  uvw_context_exit(ctx);
  uvw_context_enter(other);
  cr_assert_eq(uvw_reset(w, t), UVW_ETOKEN_USED);
  cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_RUNTIME_ERROR);
  uvw_context_exit(other);
  uvw_context_enter(ctx);
  uvw_context_unref(other);
  uvw_token_free(t);
  uvw_value_unref(a);
}

/* Row 5. */
Test(tokens, old_value_is_missing_then_prior_value) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_value_t *a = uvw_value_cstring("first"), *b = uvw_value_cstring("second");
  uvw_token_t *t1, *t2;
  uvw_set(v, a, &t1);
  uvw_set(v, b, &t2);
  cr_assert_eq(uvw_token_var(t1), v);
  cr_assert_eq(uvw_token_old_value(t1), uvw_value_missing());
  cr_assert_neq(uvw_token_old_value(t1), uvw_value_undefined(), "MISSING is not UNDEFINED");
  cr_assert_eq(uvw_token_old_value(t2), a);
  uvw_value_unref(a); /* the token keeps its own reference to the old value */
  uvw_set(v, b, NULL);
  cr_assert_str_eq(uvw_value_as_string(uvw_token_old_value(t2)), "first");
  uvw_token_free(t1);
  uvw_token_free(t2);
  uvw_value_unref(b);
}

/* Row 12 at the core level: a fork (what a child task runs in) is another
 * context object, so it cannot reset its parent's token. */
Test(tokens, child_fork_cannot_reset_parent_token) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_value_t *a = uvw_value_int(1), *out;
  uvw_token_t *t;
  uvw_set(v, a, &t);
  uvw_context_t *child = uvw_context_fork(ctx, UVW_PROPAGATE_FORK);
  uvw_context_exit(ctx);
  uvw_context_enter(child);
  cr_assert_eq(uvw_reset(v, t), UVW_ETOKEN_CONTEXT);
  cr_assert_eq(uvw_get(v, &out), 0);
  cr_assert_eq(out, a);
  uvw_context_exit(child);
  uvw_context_enter(ctx);
  cr_assert_not(uvw_token_used(t));
  uvw_context_unref(child);
  uvw_token_free(t);
  uvw_value_unref(a);
}

Test(tokens, sentinels_and_nulls_cannot_be_set) {
  uvw_var_t *v = tu_var("v", NULL);
  cr_assert_eq(uvw_set(v, uvw_value_missing(), NULL), UVW_EINVAL);
  cr_assert_eq(uvw_set(v, uvw_value_undefined(), NULL), UVW_EINVAL);
  cr_assert_eq(uvw_set(v, NULL, NULL), UVW_EINVAL);
  cr_assert_eq(uvw_set(NULL, uvw_value_nil(), NULL), UVW_EINVAL);
  cr_assert_eq(uvw_reset(v, NULL), UVW_EINVAL);
  cr_assert_not(uvw_context_is_armed(ctx), "failed sets do not arm");
  cr_assert_eq(uvw_set(v, uvw_value_nil(), NULL), 0, "nil is a real value");
  uvw_value_t *out;
  cr_assert_eq(uvw_get(v, &out), 0);
  cr_assert_eq(uvw_value_kind(out), UVW_VALUE_NIL);
}
