/* Allocation failure and bad arguments: a clear error, the context as it
 * was, never an abort. Each operation is retried with the Nth allocation
 * failing, N = 1, 2, ... until it succeeds. */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

typedef struct {
  size_t size;
  const void *chain;
  long a, b;
  int armed;
  size_t pending;
} snapshot_t;

static uvw_var_t *va, *vb;

static snapshot_t take(uvw_context_t *ctx) {
  snapshot_t s = {uvw_context_size(ctx), uvw_context_chain(ctx), -1, -1, uvw_context_is_armed(ctx),
                  uvw_context_pending_reset_count(ctx)};
  uvw_value_t *x = uvw_context_lookup(ctx, va), *y = uvw_context_lookup(ctx, vb);
  if (x) s.a = (long)uvw_value_as_int(x);
  if (y) s.b = (long)uvw_value_as_int(y);
  return s;
}

static void assert_unchanged(snapshot_t before, uvw_context_t *ctx, const char *op, long n) {
  snapshot_t now = take(ctx);
  cr_assert_eq(now.size, before.size, "%s, failing alloc %ld: size", op, n);
  cr_assert_eq(now.chain, before.chain, "%s, failing alloc %ld: chain", op, n);
  cr_assert_eq(now.a, before.a, "%s, failing alloc %ld: a", op, n);
  cr_assert_eq(now.b, before.b, "%s, failing alloc %ld: b", op, n);
  cr_assert_eq(now.armed, before.armed, "%s, failing alloc %ld: armed", op, n);
  cr_assert_eq(now.pending, before.pending, "%s, failing alloc %ld: pending", op, n);
}

typedef int (*op_fn)(void *arg);

/* Run op with allocation N failing for N = 1.. until it succeeds; every
 * failure must be UVW_ENOMEM with a MemoryError detail and change nothing. */
static int fail_each_allocation(uvw_context_t *ctx, const char *name, op_fn op, void *arg) {
  for (long n = 1; n < 100; n++) {
    snapshot_t before = take(ctx);
    tu_fail_alloc_after(n);
    int rc = op(arg);
    tu_restore_alloc();
    if (rc == 0) return (int)n;
    cr_assert_eq(rc, UVW_ENOMEM, "%s, failing alloc %ld: rc %d", name, n, rc);
    cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_MEMORY_ERROR);
    assert_unchanged(before, ctx, name, n);
  }
  cr_assert_fail("%s never succeeded", name);
  return -1;
}

static uvw_token_t *tok;
static uvw_value_t *val;
static int op_set_token(void *arg) {
  (void)arg;
  return uvw_set(va, val, &tok);
}
static int op_set_b(void *arg) {
  (void)arg;
  return uvw_set(vb, val, NULL);
}
static int op_reset(void *arg) { return uvw_reset(va, arg); }

Test(bad_input, set_and_reset_under_allocation_failure_leave_the_context_as_it_was) {
  va = tu_var("a", NULL);
  vb = tu_var("b", NULL);
  val = uvw_value_int(11);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  cr_assert_gt(fail_each_allocation(ctx, "first set (arms)", op_set_token, NULL), 1);
  uvw_token_t *first = tok;
  fail_each_allocation(ctx, "second variable", op_set_b, NULL);
  fail_each_allocation(ctx, "rebind", op_set_token, NULL);
  uvw_token_t *second = tok;
  fail_each_allocation(ctx, "reset to value", op_reset, second);
  fail_each_allocation(ctx, "reset to no value", op_reset, first);
  cr_assert_eq(uvw_context_pending_reset_count(ctx), 1);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  uvw_token_free(first);
  uvw_token_free(second);
  uvw_value_unref(val);
}

Test(bad_input, copy_fork_declare_and_values_report_allocation_failure) {
  uvw_value_t *a = uvw_value_int(1);
  uvw_var_t *v = tu_var("v", NULL);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(v, a, NULL);
  uvw_context_exit(ctx);
  tu_fail_alloc_after(1);
  uvw_context_t *copy = uvw_context_copy(ctx);
  uvw_context_t *fork = uvw_context_fork(ctx, UVW_PROPAGATE_FORK);
  uvw_var_t *declared = NULL;
  int rc = uvw_var_declare(tu_namespace(), "oom", NULL, &declared);
  uvw_value_t *s = uvw_value_cstring("x");
  tu_restore_alloc();
  cr_assert_null(copy);
  cr_assert_null(fork);
  cr_assert_eq(rc, UVW_ENOMEM);
  cr_assert_null(declared);
  cr_assert_null(s);
  cr_assert_eq(uvw_error_code(uvw_last_error()), UVW_ENOMEM);
  cr_assert_eq(uvw_context_lookup(ctx, v), a, "the source context is untouched");
  uvw_context_unref(ctx);
  uvw_value_unref(a);
}

Test(bad_input, null_arguments_are_errors) {
  uvw_value_t *out;
  uvw_var_t *v = tu_var("v", NULL);
  cr_assert_eq(uvw_get(NULL, &out), UVW_EINVAL);
  cr_assert_eq(uvw_get(v, NULL), UVW_EINVAL);
  cr_assert_eq(uvw_get_or(NULL, NULL, &out), UVW_EINVAL);
  cr_assert_eq(uvw_context_enter(NULL), UVW_EINVAL);
  cr_assert_eq(uvw_context_exit(NULL), UVW_ENOTENTERED);
  cr_assert_null(uvw_context_copy(NULL));
  cr_assert_null(uvw_context_fork(NULL, UVW_PROPAGATE_FORK));
  char id[33];
  cr_assert_eq(uvw_context_chain_id(NULL, id), UVW_EINVAL);
  cr_assert_eq(uvw_replace_allocator(NULL, NULL, NULL, NULL), UVW_EINVAL);
}
