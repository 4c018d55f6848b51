/* The task object of the core (public side: uvwool/task.h).
 *
 * A task is an identity that can be current on a thread, owns a context and
 * can finish; the guard's task check compares the chain's owner task with
 * the current one. Every kind of task is this struct: a runtime task is just
 * this, a loop task embeds it first and fills `ops`.
 *
 * Every registration captured under a task (uvw__capture, in the loop layer)
 * holds a reference and one `pending` count, whatever the kind of task: the
 * count is generic, and what "no registration left" means belongs to the
 * kind (ops->drained). A loop task finishes then; a runtime task has no
 * drained operation, since its runtime decides when it finishes. */
#ifndef UVW_CORE_TASK_H
#define UVW_CORE_TASK_H

#include <stdatomic.h>
#include <stdint.h>

#include "uvwool/task.h"

typedef struct uvw_task_s uvw__task_t;

/* What a kind of task adds. NULL ops (runtime tasks): freed with uvw__free,
 * nothing happens when pending drops to 0, driven by uvw_task_enter/leave. */
typedef struct uvw__task_ops_s {
  /* Free the embedding object (the core has released the context already). */
  void (*destroy)(uvw__task_t *task);
  /* pending dropped to 0: the last registration captured under the task is
   * done (on the thread that released it). */
  void (*drained)(uvw__task_t *task);
} uvw__task_ops_t;

struct uvw_task_s {
  atomic_uint refs;
  atomic_uint pending; /* registrations captured under the task (+ a loop task's body) */
  atomic_int finished;
  uint64_t id; /* process-unique, never reused; shown in ChainContention */
  const uvw__task_ops_t *ops;
  uvw_context_t *ctx; /* the task's context (a reference); NULL once let go */
  /* Runtime tasks, owned by the thread running the task: */
  uvw_context_t *top;    /* innermost context left entered above ctx at the last leave, or NULL */
  uvw__task_t *prev_task; /* current before the enter; restored by the leave */
  unsigned char entered;
  unsigned char stray; /* suspended by a loop callback's end: the next leave is a no-op */
};

/* New reference to a plain task (no ops, no context), NULL on allocation
 * failure. */
uvw__task_t *uvw__task_new(void);
/* Initialise an embedded task: refs 1, pending 0, not finished, a new id. */
void uvw__task_init(uvw__task_t *task, const uvw__task_ops_t *ops);
uvw__task_t *uvw__task_ref(uvw__task_t *task);
void uvw__task_unref(uvw__task_t *task);
/* Mark finished (the guard's view); nothing else. */
void uvw__task_finish(uvw__task_t *task);
static inline int uvw__task_finished(const uvw__task_t *task) {
  return atomic_load_explicit(&task->finished, memory_order_acquire);
}
/* Drop the task's context (and what a runtime task left entered above it). */
void uvw__task_drop_context(uvw__task_t *task);
/* Run the task in exactly ctx: refuse a context whose chain a live task
 * owns (ChainContention "create_task"), else stamp task as its owner. 0,
 * UVW_ECONTENTION or UVW_ENOMEM, ctx unchanged on error. */
int uvw__task_claim_context(uvw_context_t *ctx, uvw__task_t *task);
/* The claim in two steps, for a creation that can still fail after the
 * check: prepare does everything that can fail and changes nothing
 * (*stamped: the chain to publish, NULL for an unarmed ctx); commit cannot
 * fail and publishes it; cancel drops a prepared claim. */
/* The end of a loop callback found a runtime task entered inside it still
 * current (t->task != frame_task): suspend it, and each one under it down to
 * frame_task, as uvw_task_leave would, with a warning naming it; the task's
 * own next uvw_task_leave then succeeds doing nothing, and uvw_task_enter
 * and uvw_task_finish work as after any leave. */
void uvw__task_suspend_strays(const uvw__task_t *frame_task);
struct uvw__chain_s;
int uvw__task_claim_prepare(uvw_context_t *ctx, uvw__task_t *task, struct uvw__chain_s **stamped);
void uvw__task_claim_commit(uvw_context_t *ctx, struct uvw__chain_s *stamped);
void uvw__task_claim_cancel(struct uvw__chain_s *stamped);
/* A registration captured under task (a reference) is done: pending -1, and
 * the kind's drained operation when it was the last. */
void uvw__task_pending_done(uvw__task_t *task);
/* Make task current on this thread (borrowed; NULL for none); returns the
 * previous one so callers can restore it. */
uvw__task_t *uvw__task_swap_current(uvw__task_t *task);

#endif
