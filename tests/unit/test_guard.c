/* The chain-contention guard with real threads (docs/testing.md rows 13, 14
 * thread part, and the task slot of the guard). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "context.h"
#include "task.h"

typedef struct {
  uvw_context_t *ctx;
  uvw_var_t *var;
  uvw_token_t *token;
  int get_rc, set_rc, reset_rc, get_or_rc;
  uint64_t gen;
  char kind[16], chain_id[33], owner[24], offender[24], message[512];
} foreign_t;

static void capture_error(foreign_t *f) {
  const uvw_error_t *e = uvw_last_error();
  snprintf(f->kind, sizeof f->kind, "%s", uvw_error_field(e, "kind"));
  snprintf(f->chain_id, sizeof f->chain_id, "%s", uvw_error_field(e, "chain_id"));
  snprintf(f->owner, sizeof f->owner, "%s", uvw_error_field(e, "owner_thread"));
  snprintf(f->offender, sizeof f->offender, "%s", uvw_error_field(e, "offending_thread"));
  snprintf(f->message, sizeof f->message, "%s", uvw_error_message(e));
}

static void *touch_from_foreign_thread(void *arg) {
  foreign_t *f = arg;
  uvw_value_t *out, *v = uvw_value_int(99);
  f->gen = uvw_thread_generation();
  uvw_context_enter(f->ctx);
  f->get_rc = uvw_get(f->var, &out);
  capture_error(f);
  f->get_or_rc = uvw_get_or(f->var, NULL, &out);
  f->set_rc = uvw_set(f->var, v, NULL);
  f->reset_rc = uvw_reset(f->var, f->token);
  uvw_context_exit(f->ctx);
  uvw_value_unref(v);
  return NULL;
}

/* Row 13. */
Test(guard, foreign_thread_read_set_reset_is_contention_naming_both_threads) {
  foreign_t f = {0};
  f.var = tu_var("v", NULL);
  uvw_value_t *a = uvw_value_int(1);
  f.ctx = uvw_context_new();
  uvw_context_enter(f.ctx);
  uvw_set(f.var, a, &f.token);
  uvw_context_exit(f.ctx);
  const void *chain_before = uvw_context_chain(f.ctx);
  char id[33];
  uvw_context_chain_id(f.ctx, id);

  pthread_t th;
  pthread_create(&th, NULL, touch_from_foreign_thread, &f);
  pthread_join(th, NULL);

  cr_assert_eq(f.get_rc, UVW_ECONTENTION);
  cr_assert_eq(f.get_or_rc, UVW_ECONTENTION, "a fallback does not skip the guard");
  cr_assert_eq(f.set_rc, UVW_ECONTENTION);
  cr_assert_eq(f.reset_rc, UVW_ECONTENTION, "the guard runs before the token checks");
  cr_assert_str_eq(f.kind, "thread");
  cr_assert_str_eq(f.chain_id, id);
  char me[24], them[24];
  snprintf(me, sizeof me, "%llu", (unsigned long long)uvw_thread_generation());
  snprintf(them, sizeof them, "%llu", (unsigned long long)f.gen);
  cr_assert_str_eq(f.owner, me);
  cr_assert_str_eq(f.offender, them);
  cr_assert(strstr(f.message, id) && strstr(f.message, me) && strstr(f.message, them),
            "message names chain, owner and offender: %s", f.message);
  cr_assert_eq(uvw_context_chain(f.ctx), chain_before, "the chain is as it was");
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(f.ctx, f.var)), 1, "the value is as it was");
  uvw_context_enter(f.ctx);
  cr_assert_eq(uvw_reset(f.var, f.token), 0, "the token is still good on the owner thread");
  uvw_context_exit(f.ctx);
  uvw_token_free(f.token);
  uvw_context_unref(f.ctx);
  uvw_value_unref(a);
}

Test(guard, contention_is_a_wool_error) {
  cr_assert(uvw_error_kind_is(UVW_KIND_CHAIN_CONTENTION, UVW_KIND_WOOL_ERROR));
  cr_assert_not(uvw_error_kind_is(UVW_KIND_CHAIN_CONTENTION, UVW_KIND_WOOL_WARNING));
}

typedef struct {
  uvw_context_t *ctx;
  uvw_var_t *var;
  int rc;
  int saw;
} share_t;

static void *offload_without_touching(void *arg) {
  share_t *s = arg;
  /* Crossing into the armed context is fine; only an access would trip. */
  s->rc = uvw_context_enter(s->ctx);
  uvw_context_exit(s->ctx);
  return NULL;
}

static void *use_unarmed(void *arg) {
  share_t *s = arg;
  uvw_value_t *out = NULL;
  uvw_context_enter(s->ctx);
  s->rc = uvw_get_or(s->var, NULL, &out);
  s->saw = out ? (int)uvw_value_as_int(out) : -1;
  uvw_context_exit(s->ctx);
  return NULL;
}

/* Row 14, thread part: no false positives. */
Test(guard, no_false_positive_for_offload_that_touches_nothing) {
  share_t s = {uvw_context_new(), tu_var("v", NULL), -1, 0};
  uvw_value_t *a = uvw_value_int(1);
  uvw_context_enter(s.ctx);
  uvw_set(s.var, a, NULL);
  uvw_context_exit(s.ctx);
  pthread_t th;
  pthread_create(&th, NULL, offload_without_touching, &s);
  pthread_join(th, NULL);
  cr_assert_eq(s.rc, 0);
  uvw_context_unref(s.ctx);
  uvw_value_unref(a);
}

Test(guard, no_false_positive_for_unarmed_context_shared_between_threads) {
  share_t s = {uvw_context_new(), tu_var("v", NULL), -1, 0};
  pthread_t th;
  pthread_create(&th, NULL, use_unarmed, &s);
  pthread_join(th, NULL);
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.saw, -1, "nothing bound, no error");
  cr_assert_not(uvw_context_is_armed(s.ctx));
  uvw_context_unref(s.ctx);
}

static void read_in_copy(void *arg) {
  share_t *s = arg;
  uvw_value_t *out;
  s->rc = uvw_get(s->var, &out);
  s->saw = (int)uvw_value_as_int(out);
}

Test(guard, no_false_positive_for_callbacks_on_the_owning_thread) {
  share_t s = {NULL, tu_var("v", NULL), -1, 0};
  uvw_value_t *a = uvw_value_int(5);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(s.var, a, NULL);
  uvw_context_t *captured = uvw_context_copy_current(); /* what a callback registration captures */
  uvw_context_exit(ctx);
  cr_assert_eq(uvw_context_run(captured, read_in_copy, &s), 0);
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.saw, 5);
  uvw_context_unref(captured);
  uvw_context_unref(ctx);
  uvw_value_unref(a);
}

static void *read_in_thread_fork(void *arg) {
  share_t *s = arg;
  uvw_value_t *out, *b = uvw_value_int(7);
  uvw_context_enter(s->ctx);
  s->rc = uvw_get(s->var, &out);
  s->saw = (int)uvw_value_as_int(out);
  if (s->rc == 0) s->rc = uvw_set(s->var, b, NULL);
  uvw_context_exit(s->ctx);
  uvw_value_unref(b);
  return NULL;
}

Test(guard, a_thread_fork_is_owned_by_the_thread_that_enters_it) {
  share_t s = {NULL, tu_var("v", NULL), -1, 0};
  uvw_value_t *a = uvw_value_int(3);
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw_set(s.var, a, NULL);
  uvw_context_exit(ctx);
  s.ctx = uvw_context_fork(ctx, UVW_PROPAGATE_THREAD);
  pthread_t th;
  pthread_create(&th, NULL, read_in_thread_fork, &s);
  pthread_join(th, NULL);
  cr_assert_eq(s.rc, 0);
  cr_assert_eq(s.saw, 3);
  cr_assert_eq(uvw_value_as_int(uvw_context_lookup(ctx, s.var)), 3, "no write-back to the parent");
  cr_assert_neq(uvw_context_owner_thread(s.ctx), uvw_thread_generation());
  uvw_context_unref(s.ctx);
  uvw_context_unref(ctx);
  uvw_value_unref(a);
}

/* The task slot: an armed chain owned by a live task trips for another task,
 * not for plain code, and not once the owner finished. */
Test(guard, task_check_uses_the_owner_task_and_respects_finished) {
  uvw_var_t *v = tu_var("v", NULL);
  uvw_value_t *a = uvw_value_int(1), *out;
  uvw__task_t *owner = uvw__task_new(), *other = uvw__task_new();
  uvw_context_t *ctx = uvw_context_new();
  uvw_context_enter(ctx);
  uvw__task_t *prev = uvw__task_swap_current(owner);
  uvw_set(v, a, NULL); /* stamps owner task */
  uvw__task_swap_current(NULL);
  cr_assert_eq(uvw_get(v, &out), 0, "no current task never raises");
  uvw__task_swap_current(other);
  cr_assert_eq(uvw_get(v, &out), UVW_ECONTENTION);
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "kind"), "task");
  char owner_id[24];
  snprintf(owner_id, sizeof owner_id, "%llu", (unsigned long long)owner->id);
  cr_assert_str_eq(uvw_error_field(uvw_last_error(), "owner_task"), owner_id);
  uvw__task_finish(owner);
  cr_assert_eq(uvw_get(v, &out), 0, "a finished owner task never raises");
  cr_assert_eq(uvw_set(v, a, NULL), 0, "a new runner takes the chain over");
  uvw__task_swap_current(owner);
  cr_assert_eq(uvw_get(v, &out), UVW_ECONTENTION, "the new owner is the other task");
  uvw__task_swap_current(prev);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  uvw__task_unref(owner);
  uvw__task_unref(other);
  uvw_value_unref(a);
}

typedef struct {
  uint64_t gen;
} gen_t;
static void *record_gen(void *arg) {
  ((gen_t *)arg)->gen = uvw_thread_generation();
  return NULL;
}

Test(guard, thread_generations_are_never_reused) {
  gen_t g[8];
  for (int i = 0; i < 8; i++) {
    pthread_t th;
    pthread_create(&th, NULL, record_gen, &g[i]);
    pthread_join(th, NULL); /* the OS may reuse the thread id; we must not */
  }
  for (int i = 0; i < 8; i++) {
    cr_assert_neq(g[i].gen, uvw_thread_generation());
    for (int j = 0; j < i; j++) cr_assert_neq(g[i].gen, g[j].gen);
  }
}
