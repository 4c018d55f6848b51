/* Runtime tasks (uvwool/task.h): what a Lua coroutine, a Ruby fiber or a JS
 * async scope is to uvwool. Created with a fork, made current around each
 * resume, finished when it ends; the guard tells two of them apart. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <stdio.h>

#include "task.h"
#include "testutil.h"

static uvw_var_t *var;
static void setup(void) { var = tu_var("v", NULL); }
TestSuite(task_api, .init = setup);

static long read_var(void) {
  uvw_value_t *out = NULL;
  int rc = uvw_get_or(var, NULL, &out);
  cr_assert_eq(rc, 0, "get failed: %s", uvw_error_message(uvw_last_error()));
  return out ? (long)uvw_value_as_int(out) : -1;
}

static int write_var(long v) {
  uvw_value_t *val = uvw_value_int(v);
  int rc = uvw_set(var, val, NULL);
  uvw_value_unref(val);
  return rc;
}

static void chain_id(uvw_context_t *ctx, char out[33]) {
  out[0] = '\0';
  uvw_context_chain_id(ctx, out);
}

/* The error just returned has this code, a message and a "task" field. */
static void assert_detail(int rc, int code, const char *needle) {
  cr_assert_eq(rc, code, "rc %d, expected %d", rc, code);
  const uvw_error_t *e = uvw_last_error();
  cr_assert_not_null(e);
  cr_assert_eq(uvw_error_code(e), code);
  cr_assert(strstr(uvw_error_message(e), needle) != NULL, "message \"%s\" should mention \"%s\"",
            uvw_error_message(e), needle);
}

/* A context of its own, entered, with var bound: the test's "parent". */
static uvw_context_t *enter_parent(long v) {
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_enter(ctx), 0);
  cr_assert_eq(write_var(v), 0);
  return ctx;
}

static void leave_parent(uvw_context_t *ctx) {
  cr_assert_eq(uvw_context_exit(ctx), 0);
  uvw_context_unref(ctx);
}

/* ---- creation: copy-on-fork ------------------------------------------------ */

Test(task_api, a_new_task_runs_in_a_fork_with_a_new_chain_id_and_isolated_writes) {
  uvw_context_t *parent = enter_parent(5);
  char parent_id[33], child_id[33];
  chain_id(parent, parent_id);
  uvw_task_t *t = NULL;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_neq(uvw_task_context(t), parent, "a fork, not the parent itself");
  cr_assert_eq(write_var(6), 0, "the parent writes after the fork");

  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_context_current(), uvw_task_context(t));
  chain_id(uvw_context_current(), child_id);
  cr_assert_neq(child_id[0], '\0', "an armed parent forks to an armed child");
  cr_assert_str_neq(child_id, parent_id, "a new chain id");
  cr_assert_eq(read_var(), 5, "inherited at creation; the parent's later write is not seen");
  cr_assert_eq(write_var(7), 0);
  cr_assert_eq(uvw_task_leave(t), 0);

  cr_assert_eq(uvw_context_current(), parent);
  cr_assert_eq(read_var(), 6, "the child's write is not seen by the parent");
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(read_var(), 7, "the child keeps its own write across suspends");
  char again[33];
  chain_id(uvw_context_current(), again);
  cr_assert_str_eq(again, child_id, "no new id at a resume");
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_eq(uvw_task_finish(t), 0);
  uvw_task_unref(t);
  leave_parent(parent);
}

Test(task_api, a_new_task_forks_the_given_parent_not_the_current_context) {
  uvw_context_t *other = enter_parent(40);
  cr_assert_eq(uvw_context_exit(other), 0);
  uvw_context_t *here = enter_parent(1);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(other, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(read_var(), 40);
  cr_assert_eq(uvw_task_leave(t), 0);
  uvw_task_finish(t);
  uvw_task_unref(t);
  leave_parent(here);
  uvw_context_unref(other);
}

Test(task_api, a_task_of_an_unarmed_parent_is_unarmed_and_its_first_write_arms_only_its_context) {
  uvw_context_t *parent = uvw_context_new();
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(parent, &t), 0);
  cr_assert_not(uvw_context_is_armed(uvw_task_context(t)));
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(write_var(3), 0);
  cr_assert(uvw_context_is_armed(uvw_context_current()));
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_not(uvw_context_is_armed(parent));
  cr_assert_null(uvw_context_lookup(parent, var));
  uvw_task_finish(t);
  uvw_task_unref(t);
  uvw_context_unref(parent);
}

Test(task_api, the_first_enter_stamps_the_task_as_owner_of_its_chain) {
  uvw_context_t *parent = enter_parent(1);
  uvw_task_t *t, *other;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_new(NULL, &other), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(read_var(), 1, "reading only: the claim is the enter's, not a write's");
  cr_assert_eq(uvw_task_leave(t), 0);
  /* The task's context may be shared through a copy: another live task
   * running in that copy touches a chain the first task owns. */
  uvw_context_t *copy = uvw_context_copy(uvw_task_context(t));
  cr_assert_eq(uvw_task_enter(other), 0);
  cr_assert_eq(uvw_context_enter(copy), 0);
  uvw_value_t *out;
  cr_assert_eq(uvw_get(var, &out), UVW_ECONTENTION);
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "kind"), "task");
  cr_assert_eq(uvw_context_exit(copy), 0);
  cr_assert_eq(uvw_task_leave(other), 0);
  uvw_context_unref(copy);
  uvw_task_finish(t);
  uvw_task_finish(other);
  uvw_task_unref(t);
  uvw_task_unref(other);
  leave_parent(parent);
}

/* ---- the guard across runtime tasks ------------------------------------------- */

Test(task_api, two_live_runtime_tasks_sharing_an_armed_context_trip_the_task_check) {
  uvw_context_t *shared = uvw_context_new(); /* unarmed: shared freely at creation */
  uvw_task_t *a, *b;
  cr_assert_eq(uvw_task_new_in(shared, &a), 0);
  cr_assert_eq(uvw_task_new_in(shared, &b), 0);
  cr_assert_eq(uvw_task_context(a), shared, "exactly this context, not a fork");
  cr_assert_eq(uvw_task_enter(a), 0);
  cr_assert_eq(write_var(11), 0, "a arms the shared context and owns its chain");
  cr_assert_eq(uvw_task_leave(a), 0);

  cr_assert_eq(uvw_task_enter(b), 0);
  uvw_value_t *out;
  cr_assert_eq(uvw_get(var, &out), UVW_ECONTENTION);
  const uvw_error_t *e = uvw_last_error();
  char a_id[24], b_id[24];
  snprintf(a_id, sizeof a_id, "%llu", (unsigned long long)uvw_task_id(a));
  snprintf(b_id, sizeof b_id, "%llu", (unsigned long long)uvw_task_id(b));
  cr_assert_str_eq(uvw_error_field(e, "kind"), "task");
  cr_assert_str_eq(uvw_error_field(e, "owner_task"), a_id);
  cr_assert_str_eq(uvw_error_field(e, "offending_task"), b_id);
  cr_assert(strstr(uvw_error_message(e), a_id) && strstr(uvw_error_message(e), b_id), "the message names both");
  cr_assert_eq(write_var(12), UVW_ECONTENTION, "writes too");
  cr_assert_eq(uvw_task_leave(b), 0);

  /* Plain code (no task current) never raises. */
  cr_assert_eq(uvw_context_enter(shared), 0);
  cr_assert_eq(read_var(), 11);
  cr_assert_eq(uvw_context_exit(shared), 0);

  cr_assert_eq(uvw_task_finish(a), 0);
  cr_assert_eq(uvw_task_enter(b), 0);
  cr_assert_eq(read_var(), 11, "a finished owner never raises");
  cr_assert_eq(write_var(13), 0, "and b takes the chain over");
  cr_assert_eq(uvw_task_leave(b), 0);
  uvw_task_finish(b);
  uvw_task_unref(a);
  uvw_task_unref(b);
  uvw_context_unref(shared);
}

Test(task_api, new_in_refuses_a_context_a_live_task_owns_with_create_task) {
  uvw_context_t *ctx = enter_parent(1);
  cr_assert_eq(uvw_context_exit(ctx), 0);
  uvw_task_t *first, *second = (uvw_task_t *)0x1;
  cr_assert_eq(uvw_task_new_in(ctx, &first), 0, "armed but owned by no task");
  cr_assert_eq(uvw_task_new_in(ctx, &second), UVW_ECONTENTION);
  cr_assert_eq(second, (uvw_task_t *)0x1, "out untouched on error");
  const uvw_error_t *e = uvw_last_error();
  cr_assert_str_eq(uvw_error_field(e, "kind"), "create_task");
  char owner[24];
  snprintf(owner, sizeof owner, "%llu", (unsigned long long)uvw_task_id(first));
  cr_assert_str_eq(uvw_error_field(e, "owner_task"), owner);
  cr_assert_eq(uvw_task_finish(first), 0);
  cr_assert_eq(uvw_task_new_in(ctx, &second), 0, "once the owner finished");
  uvw_task_finish(second);
  uvw_task_unref(first);
  uvw_task_unref(second);
  uvw_context_unref(ctx);
}

Test(task_api, new_in_refuses_the_context_of_a_live_forked_task_that_ran) {
  uvw_context_t *parent = enter_parent(1);
  uvw_task_t *t, *in = NULL;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_eq(uvw_task_new_in(uvw_task_context(t), &in), UVW_ECONTENTION);
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "kind"), "create_task");
  cr_assert_null(in);
  uvw_task_finish(t);
  uvw_task_unref(t);
  leave_parent(parent);
}

/* ---- enter / leave ----------------------------------------------------------------- */

Test(task_api, enter_makes_task_and_context_current_and_leave_restores_both) {
  uvw_context_t *parent = enter_parent(1);
  cr_assert_null(uvw_task_current());
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_null(uvw_task_current(), "creating does not enter");
  cr_assert_eq(uvw_context_current(), parent);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_task_current(), t);
  cr_assert_eq(uvw_context_current(), uvw_task_context(t));
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_null(uvw_task_current());
  cr_assert_eq(uvw_context_current(), parent);
  uvw_task_finish(t);
  uvw_task_unref(t);
  leave_parent(parent);
}

Test(task_api, nested_resumes_restore_the_outer_task_and_context) {
  uvw_context_t *parent = enter_parent(1);
  uvw_task_t *a, *b;
  cr_assert_eq(uvw_task_new(NULL, &a), 0);
  cr_assert_eq(uvw_task_enter(a), 0);
  cr_assert_eq(write_var(2), 0);
  cr_assert_eq(uvw_task_new(NULL, &b), 0, "b forks a's context (it is current)");
  cr_assert_eq(uvw_task_enter(b), 0, "coroutine a resumes coroutine b");
  cr_assert_eq(uvw_task_current(), b);
  cr_assert_eq(read_var(), 2);
  cr_assert_eq(write_var(3), 0);
  cr_assert_eq(uvw_task_leave(b), 0, "b yields back to a");
  cr_assert_eq(uvw_task_current(), a);
  cr_assert_eq(uvw_context_current(), uvw_task_context(a));
  cr_assert_eq(read_var(), 2);
  cr_assert_eq(uvw_task_leave(a), 0);
  cr_assert_null(uvw_task_current());
  cr_assert_eq(uvw_context_current(), parent);
  /* b resumed later from the top level comes back there. */
  cr_assert_eq(uvw_task_enter(b), 0);
  cr_assert_eq(read_var(), 3);
  cr_assert_eq(uvw_task_leave(b), 0);
  cr_assert_null(uvw_task_current());
  cr_assert_eq(uvw_context_current(), parent);
  uvw_task_finish(a);
  uvw_task_finish(b);
  uvw_task_unref(a);
  uvw_task_unref(b);
  leave_parent(parent);
}

typedef struct {
  uvw_context_t *ctx;
  int rc;
  const char *field;
} foreign_claim_t;

static void *claim_from_another_thread(void *arg) {
  foreign_claim_t *c = arg;
  uvw_task_t *t = NULL;
  c->rc = uvw_task_new_in(c->ctx, &t);
  c->field = uvw_error_field(uvw_last_error(), "entered_thread") ? "entered_thread" : NULL;
  if (t) uvw_task_unref(t);
  return NULL;
}

Test(task_api, a_task_cannot_be_made_in_a_context_entered_on_another_thread) {
  uvw_context_t *parent = enter_parent(1);
  foreign_claim_t c = {.ctx = parent, .rc = 0};
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, claim_from_another_thread, &c), 0);
  pthread_join(th, NULL);
  cr_assert_eq(c.rc, UVW_EENTERED, "the claim would write a context this thread has entered");
  cr_assert_str_eq(c.field ? c.field : "", "entered_thread", "the refusal names the thread");
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new_in(parent, &t), 0, "on the thread that has it entered it is fine");
  uvw_task_finish(t);
  uvw_task_unref(t);
  leave_parent(parent);
}

Test(task_api, a_task_suspended_inside_a_run_gets_that_context_back_at_its_next_resume) {
  uvw_context_t *parent = enter_parent(1);
  uvw_context_t *inner = uvw_context_new();
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_context_enter(inner), 0, "the task enters a context of its own and yields inside it");
  cr_assert_eq(write_var(50), 0);
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_eq(uvw_context_current(), parent, "suspended: the caller's context, not the task's inner one");
  cr_assert_eq(read_var(), 1);
  cr_assert_eq(uvw_context_enter(inner), UVW_EENTERED, "the inner context stays with the suspended task");
  cr_assert(strstr(uvw_error_message(uvw_last_error()), "suspended task") != NULL,
            "the refusal says who holds it: %s", uvw_error_message(uvw_last_error()));
  uvw_context_t *copy = uvw_context_copy(inner);
  cr_assert_eq(uvw_context_size(copy), 1, "a context held by a suspended task reads as a foreign one: "
                                          "its copy has the task's write");
  uvw_context_unref(copy);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_context_current(), inner, "resumed where it yielded");
  cr_assert_eq(read_var(), 50);
  cr_assert_eq(uvw_context_exit(inner), 0, "and its run ends normally");
  cr_assert_eq(uvw_context_current(), uvw_task_context(t));
  cr_assert_eq(uvw_task_leave(t), 0);
  uvw_task_finish(t);
  uvw_task_unref(t);
  uvw_context_unref(inner);
  leave_parent(parent);
}

Test(task_api, finishing_a_task_suspended_inside_a_run_frees_that_context_for_others) {
  size_t before = tu_released();
  uvw_context_t *inner = uvw_context_new();
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_context_enter(inner), 0);
  uvw_value_t *v = tu_counted_value();
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  cr_assert_eq(uvw_task_leave(t), 0);
  uvw_context_unref(inner); /* the run's holder goes first, as a collector may do */
  cr_assert_eq(tu_released(), before, "the suspended task keeps what it yielded inside");
  cr_assert_eq(uvw_task_finish(t), 0);
  cr_assert_eq(tu_released(), before + 1, "finishing lets it go");
  uvw_task_unref(t);

  inner = uvw_context_new();
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_context_enter(inner), 0);
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_eq(uvw_task_finish(t), 0);
  cr_assert_eq(uvw_context_enter(inner), 0, "no longer entered once the task is gone");
  cr_assert_eq(uvw_context_exit(inner), 0);
  uvw_context_unref(inner);
  uvw_task_unref(t);
}

/* ---- bad orders: an error with detail, nothing changed ------------------------------ */

Test(task_api, leaving_a_task_that_is_not_entered_is_an_error) {
  uvw_context_t *parent = enter_parent(1);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  assert_detail(uvw_task_leave(t), UVW_ENOTENTERED, "not entered");
  cr_assert_null(uvw_task_current());
  cr_assert_eq(uvw_context_current(), parent);
  uvw_task_finish(t);
  uvw_task_unref(t);
  leave_parent(parent);
}

Test(task_api, leaving_an_outer_task_before_the_inner_one_is_an_error) {
  uvw_context_t *parent = enter_parent(1);
  uvw_task_t *a, *b;
  cr_assert_eq(uvw_task_new(NULL, &a), 0);
  cr_assert_eq(uvw_task_new(NULL, &b), 0);
  cr_assert_eq(uvw_task_enter(a), 0);
  cr_assert_eq(uvw_task_enter(b), 0);
  assert_detail(uvw_task_leave(a), UVW_ENOTENTERED, "innermost");
  char b_id[24];
  snprintf(b_id, sizeof b_id, "%llu", (unsigned long long)uvw_task_id(b));
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "current_task"), b_id);
  cr_assert_eq(uvw_task_current(), b, "nothing changed");
  cr_assert_eq(uvw_context_current(), uvw_task_context(b));
  cr_assert_eq(uvw_task_leave(b), 0);
  cr_assert_eq(uvw_task_leave(a), 0, "the right order still works");
  cr_assert_eq(uvw_context_current(), parent);
  uvw_task_finish(a);
  uvw_task_finish(b);
  uvw_task_unref(a);
  uvw_task_unref(b);
  leave_parent(parent);
}

Test(task_api, entering_a_running_task_again_is_an_error) {
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  uvw_context_t *ctx = uvw_context_current();
  assert_detail(uvw_task_enter(t), UVW_EENTERED, "already entered");
  cr_assert_eq(uvw_task_current(), t);
  cr_assert_eq(uvw_context_current(), ctx);
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_null(uvw_task_current(), "one leave undoes the one enter that worked");
  uvw_task_finish(t);
  uvw_task_unref(t);
}

Test(task_api, entering_a_finished_task_is_an_error_and_finishing_twice_is_not) {
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_finish(t), 0);
  cr_assert(uvw_task_finished(t));
  cr_assert_null(uvw_task_context(t), "a finished task let go of its context");
  uvw_context_t *before = uvw_context_current();
  assert_detail(uvw_task_enter(t), UVW_EINVAL, "finished");
  cr_assert_null(uvw_task_current());
  cr_assert_eq(uvw_context_current(), before);
  uvw_clear_error();
  cr_assert_eq(uvw_task_finish(t), 0, "idempotent");
  cr_assert_null(uvw_last_error(), "and not an error");
  uvw_task_unref(t);
}

Test(task_api, finishing_an_entered_task_is_an_error) {
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  assert_detail(uvw_task_finish(t), UVW_EENTERED, "leave it first");
  cr_assert_not(uvw_task_finished(t));
  cr_assert_eq(uvw_task_current(), t);
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_eq(uvw_task_finish(t), 0);
  uvw_task_unref(t);
}

Test(task_api, leaving_after_the_task_exited_its_own_context_is_an_error) {
  uvw_context_t *parent = enter_parent(1);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_context_exit(uvw_task_context(t)), 0, "code inside the task misbehaves");
  assert_detail(uvw_task_leave(t), UVW_ENOTENTERED, "exited the task's own context");
  cr_assert_eq(uvw_task_current(), t, "nothing changed");
  /* Repair: enter the task's context again, then the leave works. */
  cr_assert_eq(uvw_context_enter(uvw_task_context(t)), 0);
  cr_assert_eq(uvw_task_leave(t), 0);
  cr_assert_null(uvw_task_current());
  cr_assert_eq(uvw_context_current(), parent);
  uvw_task_finish(t);
  uvw_task_unref(t);
  leave_parent(parent);
}

Test(task_api, a_task_in_a_context_entered_elsewhere_cannot_be_entered) {
  uvw_context_t *parent = enter_parent(1);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new_in(parent, &t), 0, "the current context, as given");
  assert_detail(uvw_task_enter(t), UVW_EENTERED, "already entered");
  cr_assert_null(uvw_task_current(), "nothing changed");
  cr_assert_eq(uvw_context_current(), parent);
  uvw_task_finish(t);
  uvw_task_unref(t);
  leave_parent(parent);
}

Test(task_api, null_arguments_are_errors_with_detail) {
  uvw_task_t *t = (uvw_task_t *)0x1;
  assert_detail(uvw_task_new(NULL, NULL), UVW_EINVAL, "out is NULL");
  assert_detail(uvw_task_new_in(NULL, &t), UVW_EINVAL, "ctx or out is NULL");
  cr_assert_eq(t, (uvw_task_t *)0x1);
  uvw_context_t *ctx = uvw_context_new();
  assert_detail(uvw_task_new_in(ctx, NULL), UVW_EINVAL, "ctx or out is NULL");
  uvw_context_unref(ctx);
  assert_detail(uvw_task_enter(NULL), UVW_EINVAL, "task is NULL");
  assert_detail(uvw_task_leave(NULL), UVW_EINVAL, "task is NULL");
  assert_detail(uvw_task_finish(NULL), UVW_EINVAL, "task is NULL");
  cr_assert_null(uvw_task_ref(NULL));
  uvw_task_unref(NULL);
  cr_assert_eq(uvw_task_finished(NULL), 0);
  cr_assert_eq(uvw_task_id(NULL), 0);
  cr_assert_null(uvw_task_context(NULL));
}

/* ---- lifetime and memory -------------------------------------------------------------- */

Test(task_api, finishing_releases_the_tasks_context) {
  size_t before = tu_released();
  uvw_context_t *parent = uvw_context_new();
  uvw_context_enter(parent);
  uvw_value_t *v = tu_counted_value();
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  cr_assert_eq(uvw_task_enter(t), 0);
  cr_assert_eq(uvw_task_leave(t), 0);
  leave_parent(parent);
  cr_assert_eq(tu_released(), before, "the task's fork still holds the value");
  cr_assert_eq(uvw_task_finish(t), 0);
  cr_assert_eq(tu_released(), before + 1);
  cr_assert_neq(uvw_task_id(t), 0, "the object stays valid until the last unref");
  uvw_task_unref(t);
}

Test(task_api, the_last_unref_of_an_unfinished_task_releases_its_context) {
  size_t before = tu_released();
  uvw_context_t *parent = uvw_context_new();
  uvw_context_enter(parent);
  uvw_value_t *v = tu_counted_value();
  uvw_set(var, v, NULL);
  uvw_value_unref(v);
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0); /* never entered: nobody owns its chain */
  leave_parent(parent);
  uvw_task_unref(t);
  cr_assert_eq(tu_released(), before + 1);
}

Test(task_api, ids_are_distinct_and_never_zero) {
  uvw_task_t *a, *b;
  cr_assert_eq(uvw_task_new(NULL, &a), 0);
  cr_assert_eq(uvw_task_new(NULL, &b), 0);
  cr_assert_neq(uvw_task_id(a), 0);
  cr_assert_neq(uvw_task_id(a), uvw_task_id(b));
  cr_assert_eq(uvw_task_ref(a), a);
  uvw_task_unref(a);
  uvw_task_unref(a);
  uvw_task_unref(b);
}

Test(task_api, allocation_failures_change_nothing) {
  uvw_context_t *parent = enter_parent(1);
  for (long n = 1; n <= 2; n++) {
    uvw_task_t *t = (uvw_task_t *)0x1;
    tu_fail_alloc_after(n); /* 1: the task, 2: the fork */
    int rc = uvw_task_new(NULL, &t);
    tu_restore_alloc();
    cr_assert_eq(rc, UVW_ENOMEM, "allocation %ld", n);
    cr_assert_eq(t, (uvw_task_t *)0x1);
    cr_assert_eq(uvw_error_code(uvw_last_error()), UVW_ENOMEM);
  }
  uvw_task_t *t;
  cr_assert_eq(uvw_task_new(NULL, &t), 0);
  tu_fail_alloc_after(1); /* the first enter claims the fork's chain */
  int rc = uvw_task_enter(t);
  tu_restore_alloc();
  cr_assert_eq(rc, UVW_ENOMEM);
  cr_assert_null(uvw_task_current(), "nothing changed");
  cr_assert_eq(uvw_context_current(), parent);
  cr_assert_eq(uvw_task_enter(t), 0, "and it works once memory is back");
  cr_assert_eq(uvw_task_current(), t);
  cr_assert_eq(uvw_task_leave(t), 0);
  uvw_task_finish(t);
  uvw_task_unref(t);
  leave_parent(parent);
}
