/* Contexts: copy, run/enter/exit, what an (un)armed context holds, chain
 * immutability and forks (docs/testing.md rows 8, 9, 10 and 11 at the core
 * level; the loop issue adds the task-level versions). */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

static uvw_value_t *int_of(uvw_var_t *v) {
  uvw_value_t *out = NULL;
  return uvw_get(v, &out) == 0 ? out : NULL;
}

Test(context, copy_shares_values_and_chain_but_writes_stay_apart) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_value_t *a = uvw_value_int(1), *b = uvw_value_int(2);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(v, a, NULL);
  uvw_context_t *copy = uvw_context_copy_current();
  cr_assert_eq(uvw_context_chain(copy), uvw_context_chain(ctx), "copy shares the chain record");
  cr_assert_eq(uvw_context_lookup(copy, v), a);
  uvw_set(v, b, NULL);
  cr_assert_eq(uvw_context_lookup(copy, v), a, "later writes do not reach the copy");
  uvw_context_exit(ctx);
  uvw_context_enter(copy);
  uvw_set(v, b, NULL);
  uvw_context_exit(copy);
  cr_assert_eq(uvw_context_lookup(ctx, v), b);
  uvw_context_unref(copy);
  uvw_context_unref(ctx);
  uvw_value_unref(a);
  uvw_value_unref(b);
}

static void nested_enter(void *arg) {
  uvw_context_t *ctx = arg;
  cr_assert_eq(uvw_context_current(), ctx);
  cr_assert_eq(uvw_context_enter(ctx), UVW_EENTERED, "recursive enter is an error");
  cr_assert_eq(uvw_context_run(ctx, nested_enter, ctx), UVW_EENTERED);
  cr_assert_eq(uvw_error_kind(uvw_last_error()), UVW_KIND_RUNTIME_ERROR);
}

Test(context, run_makes_current_and_restores_previous) {
  uvw_context_t *before = uvw_context_current();
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_run(ctx, nested_enter, ctx), 0);
  cr_assert_eq(uvw_context_current(), before);
  cr_assert_eq(uvw_context_enter(before), UVW_EENTERED, "a thread's own context is already entered");
  cr_assert_eq(uvw_context_exit(before), UVW_ENOTENTERED, "and cannot be exited");
  cr_assert_eq(uvw_context_exit(ctx), UVW_ENOTENTERED, "not current any more");
  uvw_context_unref(ctx);
}

Test(context, exit_must_match_last_enter) {
  uvw_context_t *a = uvw_context_new(), *b = uvw_context_new();
  uvw_context_enter(a);
  uvw_context_enter(b);
  cr_assert_eq(uvw_context_exit(a), UVW_ENOTENTERED);
  cr_assert_eq(uvw_context_current(), b, "a failed exit changes nothing");
  cr_assert_eq(uvw_context_exit(b), 0);
  cr_assert_eq(uvw_context_exit(a), 0);
  uvw_context_unref(a);
  uvw_context_unref(b);
}

static void leave_one_entered(void *arg) { uvw_context_enter(arg); }

Test(context, run_unwinds_contexts_its_function_left_entered) {
  uvw_context_t *before = uvw_context_current();
  uvw_context_t *outer = uvw_context_new(), *leaked = uvw_context_new();
  cr_assert_eq(uvw_context_run(outer, leave_one_entered, leaked), 0);
  cr_assert_eq(uvw_context_current(), before);
  cr_assert_eq(uvw_context_enter(leaked), 0, "the leaked context was exited");
  uvw_context_exit(leaked);
  uvw_context_unref(outer);
  uvw_context_unref(leaked);
}

/* Row 8. */
Test(context, unarmed_holds_nothing_armed_holds_chain_plus_bindings) {
  uvw_var_t *v = tu_var("v", NULL), *w = tu_var("w", NULL);
  uvw_value_t *a = uvw_value_int(1), *out;
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_get_or(v, NULL, &out);
  cr_assert_not(uvw_context_is_armed(ctx));
  cr_assert_eq(uvw_context_size(ctx), 0);
  cr_assert_null(uvw_context_chain(ctx));
  uvw_set(v, a, NULL);
  uvw_set(w, a, NULL);
  cr_assert(uvw_context_is_armed(ctx));
  cr_assert_eq(uvw_context_size(ctx), 2);
  cr_assert_eq(uvw_context_owner_thread(ctx), uvw_thread_generation());
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  uvw_value_unref(a);
}

/* Row 9: chains are immutable records; a change installs a modified copy. */
Test(context, chain_changes_install_a_new_record_with_the_same_id) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_value_t *a = uvw_value_int(1);
  uvw_token_t *t;
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(v, a, &t);
  const void *c1 = uvw_context_chain(ctx);
  char id1[33], id2[33];
  uvw_context_chain_id(ctx, id1);
  uvw_context_t *snapshot = uvw_context_copy_current();
  uvw_set(v, a, NULL);
  cr_assert_eq(uvw_context_chain(ctx), c1, "a plain set by the owner keeps the record");
  uvw_reset(v, t); /* back to no value: a pending reset changes the chain */
  const void *c2 = uvw_context_chain(ctx);
  cr_assert_neq(c2, c1, "a modified chain is a new record");
  uvw_context_chain_id(ctx, id2);
  cr_assert_str_eq(id1, id2);
  cr_assert_eq(uvw_context_chain(snapshot), c1, "the old record is untouched");
  cr_assert_eq(uvw_context_pending_reset_count(snapshot), 0);
  cr_assert_eq(uvw_context_pending_reset_count(ctx), 1);
  uvw_context_exit(ctx);
  uvw_context_unref(snapshot);
  uvw_context_unref(ctx);
  uvw_token_free(t);
  uvw_value_unref(a);
}

/* Rows 10 and 11 at the core level. */
Test(context, fork_mints_new_id_keeps_values_drops_resets_and_isolates_writes) {
  uvw_var_t *v = tu_var("v", NULL), *r = tu_var("r", NULL);
  uvw_value_t *a = uvw_value_int(1), *b = uvw_value_int(2);
  uvw_token_t *t;
  uvw_context_t *parent = uvw_context_new();
  uvw_context_enter(parent);
  uvw_set(v, a, NULL);
  uvw_set(r, a, &t);
  uvw_reset(r, t);
  cr_assert_eq(uvw_context_pending_reset_count(parent), 1);
  uvw_context_exit(parent);

  char pid[33], c1id[33], c2id[33], gid[33];
  uvw_context_chain_id(parent, pid);
  uvw_context_t *c1 = uvw_context_fork(parent, UVW_PROPAGATE_FORK);
  uvw_context_t *c2 = uvw_context_fork(parent, UVW_PROPAGATE_FORK);
  uvw_context_chain_id(c1, c1id);
  uvw_context_chain_id(c2, c2id);
  cr_assert_str_neq(c1id, pid);
  cr_assert_str_neq(c1id, c2id, "siblings get distinct ids");
  cr_assert_eq(uvw_context_pending_reset_count(c1), 0, "a fork drops pending resets");
  cr_assert_eq(uvw_context_owner_thread(c1), 0, "no owner until the child starts");

  uvw_context_enter(c1);
  cr_assert_eq(uvw_context_owner_thread(c1), uvw_thread_generation(), "the first runner stamps itself");
  cr_assert_eq(uvw_value_as_int(int_of(v)), 1, "inherits the parent's values");
  uvw_set(v, b, NULL);
  uvw_context_t *grandchild = uvw_context_fork(c1, UVW_PROPAGATE_FORK);
  uvw_context_exit(c1);
  uvw_context_chain_id(grandchild, gid);
  cr_assert_str_neq(gid, c1id);
  cr_assert_str_neq(gid, pid);
  cr_assert_eq(uvw_context_lookup(grandchild, v), b);
  cr_assert_eq(uvw_context_lookup(parent, v), a, "child writes never reach the parent");
  cr_assert_eq(uvw_context_lookup(c2, v), a, "nor a sibling");

  uvw_context_unref(grandchild);
  uvw_context_unref(c1);
  uvw_context_unref(c2);
  uvw_context_unref(parent);
  uvw_token_free(t);
  uvw_value_unref(a);
  uvw_value_unref(b);
}

Test(context, fork_of_unarmed_stays_unarmed) {
  uvw_context_t *parent = uvw_context_new();
  uvw_context_t *child = uvw_context_fork(parent, UVW_PROPAGATE_FORK);
  cr_assert_not(uvw_context_is_armed(child));
  uvw_context_enter(child);
  cr_assert_not(uvw_context_is_armed(child), "entering does not arm");
  uvw_context_exit(child);
  uvw_context_unref(child);
  uvw_context_unref(parent);
}

Test(context, fork_honours_per_variable_policy) {
  uvw_var_t *all = tu_var("all", NULL), *no_fork = tu_var("no_fork", NULL), *no_thread = tu_var("no_thread", NULL);
  uvw_var_set_policy(no_fork, UVW_PROPAGATE_ALL & ~UVW_PROPAGATE_FORK);
  uvw_var_set_policy(no_thread, UVW_PROPAGATE_ALL & ~UVW_PROPAGATE_THREAD);
  uvw_value_t *a = uvw_value_int(1);
  uvw_context_t *parent = uvw_context_new();
  uvw_context_enter(parent);
  uvw_set(all, a, NULL);
  uvw_set(no_fork, a, NULL);
  uvw_set(no_thread, a, NULL);
  uvw_context_exit(parent);
  uvw_context_t *task = uvw_context_fork(parent, UVW_PROPAGATE_FORK);
  uvw_context_t *thread = uvw_context_fork(parent, UVW_PROPAGATE_THREAD);
  cr_assert_eq(uvw_context_lookup(task, all), a);
  cr_assert_null(uvw_context_lookup(task, no_fork));
  cr_assert_eq(uvw_context_lookup(task, no_thread), a);
  cr_assert_eq(uvw_context_lookup(thread, no_fork), a);
  cr_assert_null(uvw_context_lookup(thread, no_thread));
  cr_assert_eq(uvw_context_size(parent), 3, "the parent keeps everything");
  cr_assert_null(uvw_context_fork(parent, UVW_PROPAGATE_WIRE), "wire is not a fork edge");
  cr_assert_eq(uvw_error_code(uvw_last_error()), UVW_EINVAL);
  uvw_context_unref(task);
  uvw_context_unref(thread);
  uvw_context_unref(parent);
  uvw_value_unref(a);
}

Test(context, captured_values_are_released_with_the_last_context) {
  uvw_var_t *v = tu_var("v", NULL);
  size_t before = tu_released();
  uvw_value_t *val = tu_counted_value();
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(v, val, NULL);
  uvw_value_unref(val);
  uvw_context_t *copy = uvw_context_copy_current();
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  cr_assert_eq(tu_released(), before, "the copy still holds it");
  uvw_context_unref(copy);
  cr_assert_eq(tu_released(), before + 1);
}
