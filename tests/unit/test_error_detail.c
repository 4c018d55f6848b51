/* Errors say what and where: ChainContention names the operation, the
 * variable, both threads (generation, OS id, name) and a remedy; a
 * ContextVarCollision says what declared the variable first; UVW_EENTERED
 * names the thread that has the context entered. */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "testutil.h"
#include "var.h"

static int os_tid(void) { return (int)syscall(SYS_gettid); }

static void assert_field(const uvw_error_t *e, const char *name, const char *want) {
  const char *got = uvw_error_field(e, name);
  cr_assert_not_null(got, "field %s is present", name);
  cr_assert_str_eq(got, want, "field %s", name);
}

static void assert_contains(const char *text, const char *part) {
  cr_assert_not_null(strstr(text, part), "\"%s\" is in: %s", part, text);
}

/* ---- ChainContention -------------------------------------------------------- */

typedef struct {
  uvw_context_t *ctx;
  uvw_var_t *var;
  uvw_token_t *token;
  const char *op;
  int rc, tid;
  uvw_error_t *error;
} runner_t;

static void *run_foreign(void *arg) {
  runner_t *r = arg;
  pthread_setname_np(pthread_self(), "uvw-runner");
  r->tid = os_tid();
  uvw_context_enter(r->ctx);
  uvw_value_t *out, *v = uvw_value_int(5);
  if (strcmp(r->op, "get") == 0) r->rc = uvw_get(r->var, &out);
  else if (strcmp(r->op, "set") == 0) r->rc = uvw_set(r->var, v, NULL);
  else r->rc = uvw_reset(r->var, r->token);
  r->error = uvw_error_ref(uvw_last_error());
  uvw_context_exit(r->ctx);
  uvw_value_unref(v);
  return NULL;
}

static void contention_names_everything(const char *op) {
  pthread_setname_np(pthread_self(), "uvw-owner");
  runner_t r = {.ctx = uvw_context_new(), .op = op};
  uvw_var_declare(tu_namespace(), "request_id", NULL, &r.var);
  char ns[32];
  snprintf(ns, sizeof ns, "%s", uvw_var_namespace(r.var));
  uvw_value_t *v = uvw_value_int(1);
  uvw_context_enter(r.ctx);
  uvw_set(r.var, v, &r.token); /* arms: this thread owns the chain */
  uvw_context_exit(r.ctx);
  uvw_value_unref(v);

  pthread_t th;
  pthread_create(&th, NULL, run_foreign, &r);
  pthread_join(th, NULL);

  cr_assert_eq(r.rc, UVW_ECONTENTION, "%s from another thread", op);
  const uvw_error_t *e = r.error;
  char owner_tid[16], runner_tid[16], variable[64];
  snprintf(owner_tid, sizeof owner_tid, "%d", os_tid());
  snprintf(runner_tid, sizeof runner_tid, "%d", r.tid);
  snprintf(variable, sizeof variable, "(%s, request_id)", ns);
  assert_field(e, "operation", op);
  assert_field(e, "variable", variable);
  assert_field(e, "owner_os_thread", owner_tid);
  assert_field(e, "owner_thread_name", "uvw-owner");
  assert_field(e, "runner_os_thread", runner_tid);
  assert_field(e, "runner_thread_name", "uvw-runner");
  assert_field(e, "kind", "thread"); /* the fields that were there stay */
  cr_assert_not_null(uvw_error_field(e, "chain_id"));
  cr_assert_not_null(uvw_error_field(e, "owner_thread"));
  cr_assert_not_null(uvw_error_field(e, "offending_thread"));

  const char *m = uvw_error_message(e);
  char what[96], owner[64], runner[64];
  snprintf(what, sizeof what, "%s of context variable (%s, request_id)", op, ns);
  snprintf(owner, sizeof owner, "OS thread %s \"uvw-owner\"", owner_tid);
  snprintf(runner, sizeof runner, "OS thread %s \"uvw-runner\"", runner_tid);
  assert_contains(m, what);
  assert_contains(m, owner);
  assert_contains(m, runner);
  assert_contains(m, "use uvw_to_thread to hand work to another thread");
  uvw_error_unref(r.error);
  uvw_token_free(r.token);
  uvw_context_unref(r.ctx);
}

Test(error_detail, contention_of_a_get_names_operation_variable_and_threads) { contention_names_everything("get"); }
Test(error_detail, contention_of_a_set_names_operation_variable_and_threads) { contention_names_everything("set"); }
Test(error_detail, contention_of_a_reset_names_operation_variable_and_threads) {
  contention_names_everything("reset");
}

/* ---- ContextVarCollision ---------------------------------------------------- */

Test(error_detail, collision_says_a_declaration_came_first_and_its_default) {
  const char *ns = tu_namespace();
  uvw_value_t *d = uvw_value_int(42);
  uvw_var_t *first, *second = NULL;
  cr_assert_eq(uvw_var_declare(ns, "dup", d, &first), 0);
  cr_assert_eq(uvw_var_declare(ns, "dup", NULL, &second), UVW_ECOLLISION);
  uvw_value_unref(d);
  cr_assert_null(second);
  const uvw_error_t *e = uvw_last_error();
  assert_field(e, "first_declared_by", "declaration");
  assert_field(e, "existing_default", "42");
  const char *at = uvw_error_field(e, "first_declared_at");
  cr_assert_not_null(at);
  /* The call came from this test program, whatever its symbols say. */
  assert_contains(at, "test_error_detail");
  const char *m = uvw_error_message(e);
  assert_contains(m, "is already declared: first declared by the call at");
  assert_contains(m, "default 42");
}

Test(error_detail, collision_says_a_stub_from_wire_data_came_first) {
  const char *ns = tu_namespace();
  uvw_var_t *stub, *taken, *again = NULL;
  cr_assert_eq(uvw__var_stub(ns, "remote", &stub), 0);
  cr_assert_eq(uvw_var_declare(ns, "remote", NULL, &taken), 0, "a stub is taken over");
  cr_assert_eq(taken, stub);
  cr_assert_eq(uvw_var_declare(ns, "remote", NULL, &again), UVW_ECOLLISION);
  const uvw_error_t *e = uvw_last_error();
  assert_field(e, "first_declared_by", "stub");
  assert_field(e, "existing_default", "no default");
  assert_contains(uvw_error_message(e), "a stub made from wire data, then declared");
  assert_contains(uvw_error_message(e), "with no default");
  cr_assert_null(again);
}

/* ---- UVW_EENTERED ----------------------------------------------------------- */

typedef struct {
  uvw_context_t *ctx;
  int tid;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int entered, release;
} holder_t;

static void *hold_entered(void *arg) {
  holder_t *h = arg;
  pthread_setname_np(pthread_self(), "uvw-holder");
  uvw_context_enter(h->ctx);
  pthread_mutex_lock(&h->lock);
  h->tid = os_tid();
  h->entered = 1;
  pthread_cond_broadcast(&h->cond);
  while (!h->release) pthread_cond_wait(&h->cond, &h->lock);
  pthread_mutex_unlock(&h->lock);
  uvw_context_exit(h->ctx);
  return NULL;
}

Test(error_detail, entered_names_the_thread_that_has_the_context) {
  holder_t h = {.ctx = uvw_context_new(), .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
  pthread_t th;
  pthread_create(&th, NULL, hold_entered, &h);
  pthread_mutex_lock(&h.lock);
  while (!h.entered) pthread_cond_wait(&h.cond, &h.lock);
  pthread_mutex_unlock(&h.lock);

  cr_assert_eq(uvw_context_enter(h.ctx), UVW_EENTERED);
  const uvw_error_t *e = uvw_last_error();
  char tid[16];
  snprintf(tid, sizeof tid, "%d", h.tid);
  assert_field(e, "entered_os_thread", tid);
  assert_field(e, "entered_thread_name", "uvw-holder");
  cr_assert_str_neq(uvw_error_field(e, "entered_thread"), "0");
  char where[64];
  snprintf(where, sizeof where, "OS thread %s \"uvw-holder\"", tid);
  assert_contains(uvw_error_message(e), "already entered on another thread");
  assert_contains(uvw_error_message(e), where);

  pthread_mutex_lock(&h.lock);
  h.release = 1;
  pthread_cond_broadcast(&h.cond);
  pthread_mutex_unlock(&h.lock);
  pthread_join(th, NULL);
  cr_assert_eq(uvw_context_enter(h.ctx), 0, "free again once the holder left");
  cr_assert_eq(uvw_context_exit(h.ctx), 0);
  uvw_context_unref(h.ctx);
}

Test(error_detail, entered_on_this_thread_says_so) {
  uvw_context_t *ctx = uvw_context_new();
  cr_assert_eq(uvw_context_enter(ctx), 0);
  cr_assert_eq(uvw_context_enter(ctx), UVW_EENTERED);
  const uvw_error_t *e = uvw_last_error();
  char gen[24], tid[16];
  snprintf(gen, sizeof gen, "%llu", (unsigned long long)uvw_thread_generation());
  snprintf(tid, sizeof tid, "%d", os_tid());
  assert_field(e, "entered_thread", gen);
  assert_field(e, "entered_os_thread", tid);
  assert_contains(uvw_error_message(e), "already entered on this thread");
  cr_assert_eq(uvw_context_exit(ctx), 0);
  uvw_context_unref(ctx);
}
