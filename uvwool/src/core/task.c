#include "task.h"

#include "alloc.h"
#include "thread.h"

static atomic_uint_fast64_t next_task_id = 1;

void uvw__task_init(uvw__task_t *task, void (*destroy)(uvw__task_t *task)) {
  atomic_init(&task->refs, 1);
  atomic_init(&task->finished, 0);
  task->id = atomic_fetch_add(&next_task_id, 1);
  task->destroy = destroy;
}

uvw__task_t *uvw__task_new(void) {
  uvw__task_t *task = uvw__malloc(sizeof(*task));
  if (task != NULL) uvw__task_init(task, NULL);
  return task;
}

uvw__task_t *uvw__task_ref(uvw__task_t *task) {
  if (task) atomic_fetch_add_explicit(&task->refs, 1, memory_order_relaxed);
  return task;
}

void uvw__task_unref(uvw__task_t *task) {
  if (task == NULL || atomic_fetch_sub_explicit(&task->refs, 1, memory_order_acq_rel) != 1) return;
  if (task->destroy)
    task->destroy(task);
  else
    uvw__free(task);
}

void uvw__task_finish(uvw__task_t *task) { atomic_store_explicit(&task->finished, 1, memory_order_release); }

uvw__task_t *uvw__task_swap_current(uvw__task_t *task) {
  uvw__thread_t *t = uvw__thread();
  uvw__task_t *prev = t->task;
  t->task = task;
  return prev;
}
