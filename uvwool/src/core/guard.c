/* ChainContention reports: the slow side of the guard. */
#include <stdio.h>

#include "context.h"
#include "error.h"

static void task_text(char *buf, size_t n, const uvw__task_t *task) {
  if (task) snprintf(buf, n, "%llu", (unsigned long long)task->id);
  else snprintf(buf, n, "none");
}

int uvw__contention(const uvw__chain_t *c, const char *kind, uint64_t offending_gen,
                    const uvw__task_t *offending_task) {
  char id[33], owner_task[24], off_task[24];
  uvw__chain_id_hex(c, id);
  task_text(owner_task, sizeof(owner_task), c->owner_task);
  task_text(off_task, sizeof(off_task), offending_task);
  uvw_error_t *e = uvw__error_set(UVW_ECONTENTION, UVW_KIND_CHAIN_CONTENTION,
                                  "ChainContention(%s): chain %s is owned by thread %llu task %s, "
                                  "but was run by thread %llu task %s",
                                  kind, id, (unsigned long long)c->owner_gen, owner_task,
                                  (unsigned long long)offending_gen, off_task);
  uvw__error_field(e, "chain_id", "%s", id);
  uvw__error_field(e, "kind", "%s", kind);
  uvw__error_field(e, "owner_thread", "%llu", (unsigned long long)c->owner_gen);
  uvw__error_field(e, "offending_thread", "%llu", (unsigned long long)offending_gen);
  uvw__error_field(e, "owner_task", "%s", owner_task);
  uvw__error_field(e, "offending_task", "%s", off_task);
  return UVW_ECONTENTION;
}

int uvw__guard_fail(const uvw__chain_t *c, uvw__thread_t *t, const char *kind) {
  return uvw__contention(c, kind, t->gen, t->task);
}
