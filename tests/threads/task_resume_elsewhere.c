/* A runtime task left on thread A and resumed on thread B: while B writes in
 * the task's context (and in a context the task left entered above its own),
 * A copies those contexts. A must read them as foreign (the reader
 * handshake of core/context.h), never as its own: the leave hands them back.
 * Meant for ThreadSanitizer: a plain main(), "N passed, N failed".
 *
 * B sets NVARS variables to the round number r, in order, every round (a
 * small map, updated in place), so any state a completed write leaves has
 * the shape r, ..., r, r-1, ..., r-1; a copy of another shape mixes two
 * moments. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "check.h"
#include "context.h" /* uvw__context_read_begin: whether a read is foreign */
#include "uvwool.h"

#define NVARS 6
#define ROUNDS 3000
#define MIN_COPIES 1000
#define MAX_ROUNDS 3000000

static uvw_var_t *vars[NVARS];
static uvw_task_t *task;
static uvw_context_t *above; /* entered by the task above its own context */
static atomic_int resumed; /* B's phase: 1 writes above, 2 writes in the task's own, 3 left */
static atomic_long copies;
static int b_reads_own_task, b_reads_own_above; /* read after the join */
static atomic_int b_enter_rc = -1;

static int64_t int_of(uvw_value_t *v) { return v ? uvw_value_as_int(v) : 0; }

static int is_foreign(const uvw_context_t *ctx) {
  int foreign = uvw__context_read_begin(ctx);
  uvw__context_read_end(ctx, foreign);
  return foreign;
}

static void write_round(int64_t r) {
  for (int k = 0; k < NVARS; k++) {
    uvw_value_t *v = uvw_value_int(r);
    uvw_set(vars[k], v, NULL);
    uvw_value_unref(v); /* the context holds the only reference: freed when replaced */
  }
}

/* Thread B: resume the task, write in the context above the task's own,
 * then (after exiting it) in the task's own, then suspend the task. */
static void *resumer(void *arg) {
  (void)arg;
  int rc = uvw_task_enter(task);
  atomic_store(&b_enter_rc, rc);
  if (rc != 0) return NULL;
  b_reads_own_above = uvw_context_current() == above && !is_foreign(above);
  atomic_store(&resumed, 1);
  int64_t r;
  for (r = 1; r <= ROUNDS || (atomic_load(&copies) < MIN_COPIES && r < MAX_ROUNDS); r++) write_round(r);
  uvw_context_exit(above);
  b_reads_own_task = uvw_context_current() == uvw_task_context(task) && !is_foreign(uvw_task_context(task));
  atomic_store(&copies, 0);
  atomic_store(&resumed, 2);
  for (r = 1; r <= ROUNDS || (atomic_load(&copies) < MIN_COPIES && r < MAX_ROUNDS); r++) write_round(r);
  uvw_task_leave(task);
  atomic_store(&resumed, 3);
  return NULL;
}

/* A copy must be one moment of B's writes. */
static int good_shape(uvw_context_t *copy) {
  int64_t first = int_of(uvw_context_lookup(copy, vars[0]));
  int drop = 0;
  for (int k = 0; k < NVARS; k++) {
    int64_t v = int_of(uvw_context_lookup(copy, vars[k]));
    if (v == first - 1 && first > 0) drop = 1;
    else if (v != first || drop) return 0;
  }
  return 1;
}

/* Thread A, while B writes phase `phase` into ctx. */
static long copy_while_written(uvw_context_t *ctx, int phase) {
  long bad = 0;
  while (atomic_load(&resumed) == phase) {
    uvw_context_t *copy = uvw_context_copy(ctx);
    if (copy == NULL) return -1;
    if (!good_shape(copy)) bad++;
    uvw_context_unref(copy);
    atomic_fetch_add(&copies, 1);
  }
  return bad;
}

int main(void) {
  char name[8];
  for (int k = 0; k < NVARS; k++) {
    snprintf(name, sizeof name, "v%d", k);
    if (uvw_var_declare("test.task_resume_elsewhere", name, NULL, &vars[k]) != 0) return 2;
  }
  /* An unarmed fork: no thread claims it before B's first write arms it. */
  if (uvw_task_new(NULL, &task) != 0) return 2;
  uvw_context_t *own = uvw_task_context(task);
  above = uvw_context_new();
  CHECK(uvw_task_enter(task) == 0, "enter on A: %s", uvw_error_message(uvw_last_error()));
  CHECK(!is_foreign(own), "A reads the task's context as its own while the task runs on A");
  CHECK(uvw_context_enter(above) == 0, "enter above");
  CHECK(uvw_task_leave(task) == 0, "leave on A: %s", uvw_error_message(uvw_last_error()));
  CHECK(is_foreign(own), "after the leave, A reads the task's context as foreign");
  CHECK(is_foreign(above), "after the leave, A reads the context the task left above its own as foreign");

  pthread_t b;
  pthread_create(&b, NULL, resumer, NULL);
  while (atomic_load(&resumed) == 0 && atomic_load(&b_enter_rc) <= 0) sched_yield();
  long bad_above = copy_while_written(above, 1);
  long bad_own = copy_while_written(own, 2);
  pthread_join(b, NULL);
  CHECK(atomic_load(&b_enter_rc) == 0, "resume on B: %d", atomic_load(&b_enter_rc));
  CHECK(b_reads_own_above, "B reads the context above the task's own as its own once it resumed the task");
  CHECK(b_reads_own_task, "B reads the task's context as its own while it runs the task");
  CHECK(bad_above == 0, "%ld copies of the context above mixed two moments of B's writes", bad_above);
  CHECK(bad_own == 0, "%ld copies of the task's context mixed two moments of B's writes", bad_own);
  CHECK(is_foreign(own), "after B's leave, the task's context is B's no more");

  uvw_context_t *last = uvw_context_copy(own);
  CHECK(last && int_of(uvw_context_lookup(last, vars[NVARS - 1])) > 0, "B's last round is in the task's context");
  uvw_context_unref(last);
  CHECK(uvw_task_finish(task) == 0, "finish on A");
  uvw_task_unref(task);
  uvw_context_unref(above);
  return CHECK_SUMMARY();
}
