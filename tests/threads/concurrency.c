/* Concurrency checks meant for ThreadSanitizer (a plain main(): Criterion
 * cannot start under TSan). Threads share armed parents, values and the
 * registry; each check counts, and the run ends with "N passed, N failed". */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "uvwool.h"


#define NTHREADS 8
#define ROUNDS 2000

static uvw_var_t *shared_var, *own_var;
static uvw_context_t *parent; /* armed on the main thread */

typedef struct {
  int index;
  int fork_ok, contention_ok, decl_ok;
  char ids[4][33];
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  w->fork_ok = w->contention_ok = 1;
  for (int r = 0; r < ROUNDS; r++) {
    /* A thread fork of the shared parent: ours alone, values inherited. */
    uvw_context_t *fork = uvw_context_fork(parent, UVW_PROPAGATE_THREAD);
    uvw_value_t *mine = uvw_value_int(w->index * 100000 + r), *out = NULL;
    uvw_context_enter(fork);
    if (uvw_get(shared_var, &out) != 0 || uvw_value_as_int(out) != 42) w->fork_ok = 0;
    if (uvw_set(own_var, mine, NULL) != 0) w->fork_ok = 0;
    if (uvw_get(own_var, &out) != 0 || uvw_value_as_int(out) != w->index * 100000 + r) w->fork_ok = 0;
    if (r < 4) uvw_context_chain_id(fork, w->ids[r]);
    uvw_context_exit(fork);
    uvw_context_unref(fork);
    uvw_value_unref(mine);

    /* A plain copy of the parent keeps the parent's owner: reading trips. */
    uvw_context_t *copy = uvw_context_copy(parent);
    uvw_context_enter(copy);
    if (uvw_get(shared_var, &out) != UVW_ECONTENTION) w->contention_ok = 0;
    uvw_context_exit(copy);
    uvw_context_unref(copy);
  }
  char name[32];
  snprintf(name, sizeof name, "declared-by-%d", w->index);
  uvw_var_t *v;
  w->decl_ok = uvw_var_declare("threads", name, NULL, &v) == 0 &&
               uvw_var_declare("threads", "contested", NULL, &v) != UVW_EINVAL;
  return NULL;
}

static atomic_int enter_ok, enter_busy;
static uvw_context_t *contested;
static void *enter_race(void *arg) {
  (void)arg;
  for (int i = 0; i < ROUNDS; i++) {
    int rc = uvw_context_enter(contested);
    if (rc == 0) {
      atomic_fetch_add(&enter_ok, 1);
      uvw_context_exit(contested);
    } else if (rc == UVW_EENTERED) {
      atomic_fetch_add(&enter_busy, 1);
    }
  }
  return NULL;
}

int main(void) {
  uvw_value_t *v42 = uvw_value_int(42);
  uvw_var_declare("threads", "shared", NULL, &shared_var);
  uvw_var_declare("threads", "own", NULL, &own_var);
  parent = uvw_context_new();
  uvw_context_enter(parent);
  uvw_set(shared_var, v42, NULL);
  uvw_context_exit(parent);

  pthread_t th[NTHREADS];
  worker_t w[NTHREADS];
  memset(w, 0, sizeof w);
  for (int i = 0; i < NTHREADS; i++) {
    w[i].index = i;
    pthread_create(&th[i], NULL, worker, &w[i]);
  }
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < NTHREADS; i++) {
    CHECK(w[i].fork_ok, "worker %d: fork saw wrong values", i);
    CHECK(w[i].contention_ok, "worker %d: plain copy did not trip the guard", i);
    CHECK(w[i].decl_ok, "worker %d: concurrent declaration", i);
  }
  /* Every fork minted its own id. */
  int distinct = 1;
  for (int i = 0; i < NTHREADS * 4; i++)
    for (int j = 0; j < i; j++)
      if (strcmp(w[i / 4].ids[i % 4], w[j / 4].ids[j % 4]) == 0) distinct = 0;
  CHECK(distinct, "fork ids collided");
  int contested_decls = 0;
  for (int i = 0; i < NTHREADS; i++) contested_decls += uvw_var_find("threads", "contested") != NULL;
  CHECK(contested_decls == NTHREADS, "contested variable declared exactly once and found");
  CHECK(uvw_value_as_int(uvw_context_lookup(parent, shared_var)) == 42, "parent untouched");
  CHECK(uvw_context_lookup(parent, own_var) == NULL, "no write-back from thread forks");

  contested = uvw_context_new();
  pthread_t a, b;
  pthread_create(&a, NULL, enter_race, NULL);
  pthread_create(&b, NULL, enter_race, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  CHECK(atomic_load(&enter_ok) + atomic_load(&enter_busy) == 2 * ROUNDS,
        "every enter either succeeded or saw the context entered elsewhere");
  CHECK(atomic_load(&enter_ok) > 0, "some enters succeeded");
  uvw_context_unref(contested);

  uvw_context_unref(parent);
  uvw_value_unref(v42);
  return CHECK_SUMMARY();
}
