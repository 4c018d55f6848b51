/* A runtime task's own fork is reachable from other threads
 * (uvw_task_context hands it out), so resuming the task must take the
 * context with a compare-and-swap: thread A resumes and suspends the task
 * while thread C enters and exits the same context. The two may never have
 * it entered at once. Meant for ThreadSanitizer as well (two threads writing
 * the context's stack link at once is a race it reports). A plain main(),
 * "N passed, N failed". */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"
#include "uvwool.h"

#define ITERATIONS 200000

static uvw_task_t *task;
static atomic_int a_in, c_in, stop;
static atomic_long overlaps, a_entries, c_entries;

static void *other(void *arg) {
  uvw_context_t *ctx = arg;
  while (!atomic_load(&stop)) {
    if (uvw_context_enter(ctx) != 0) continue;
    atomic_store(&c_in, 1);
    if (atomic_load(&a_in)) atomic_fetch_add(&overlaps, 1);
    atomic_fetch_add(&c_entries, 1);
    atomic_store(&c_in, 0);
    uvw_context_exit(ctx);
  }
  return NULL;
}

int main(void) {
  if (uvw_task_new(NULL, &task) != 0) return 2;
  uvw_context_t *ctx = uvw_context_ref(uvw_task_context(task));
  pthread_t c;
  pthread_create(&c, NULL, other, ctx);
  /* Start racing only once C is in its loop: a scheduler that runs one
   * thread at a time (valgrind's) could otherwise finish A's loop first. */
  while (atomic_load(&c_entries) == 0) sched_yield();
  long refused = 0;
  for (long i = 0; i < ITERATIONS || (atomic_load(&c_entries) == 0 && i < 50 * ITERATIONS); i++) {
    int rc = uvw_task_enter(task);
    if (rc != 0) {
      refused += rc == UVW_EENTERED;
      continue;
    }
    atomic_store(&a_in, 1);
    if (atomic_load(&c_in)) atomic_fetch_add(&overlaps, 1);
    atomic_fetch_add(&a_entries, 1);
    atomic_store(&a_in, 0);
    uvw_task_leave(task);
  }
  atomic_store(&stop, 1);
  pthread_join(c, NULL);
  CHECK(atomic_load(&a_entries) > 0 && atomic_load(&c_entries) > 0, "both threads got in (%ld, %ld)",
        atomic_load(&a_entries), atomic_load(&c_entries));
  CHECK(atomic_load(&overlaps) == 0, "the task and another thread had the context entered at once %ld times",
        atomic_load(&overlaps));
  printf("resumes %ld, refused %ld, other thread's enters %ld\n", atomic_load(&a_entries), refused,
         atomic_load(&c_entries));
  CHECK(uvw_task_finish(task) == 0, "finish");
  uvw_task_unref(task);
  uvw_context_unref(ctx);
  return CHECK_SUMMARY();
}
