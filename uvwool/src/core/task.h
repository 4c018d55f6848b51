/* The task slot of the core. The libuv layer builds real tasks on this: a
 * task is an identity that can be current on a thread and can finish; the
 * guard's task check compares the chain's owner task with the current one. */
#ifndef UVW_CORE_TASK_H
#define UVW_CORE_TASK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct uvw__task_s {
  atomic_uint refs;
  atomic_int finished;
  uint64_t id; /* process-unique, never reused; shown in ChainContention */
  /* Frees the task when the last reference goes (the loop layer embeds this
   * struct first in its own task); NULL: uvw__free. */
  void (*destroy)(struct uvw__task_s *task);
} uvw__task_t;

/* New reference, NULL on allocation failure. */
uvw__task_t *uvw__task_new(void);
/* Initialise an embedded task: refs 1, not finished, a new id. */
void uvw__task_init(uvw__task_t *task, void (*destroy)(uvw__task_t *task));
uvw__task_t *uvw__task_ref(uvw__task_t *task);
void uvw__task_unref(uvw__task_t *task);
void uvw__task_finish(uvw__task_t *task);
static inline int uvw__task_finished(const uvw__task_t *task) {
  return atomic_load_explicit(&task->finished, memory_order_acquire);
}
/* Make task current on this thread (borrowed; NULL for none); returns the
 * previous one so callers can restore it. */
uvw__task_t *uvw__task_swap_current(uvw__task_t *task);

#endif
