/* ChainContention reports: the slow side of the guard. */
#include <stdio.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "var.h"

static void task_text(char *buf, size_t n, const uvw__task_t *task) {
  if (task) snprintf(buf, n, "%llu", (unsigned long long)task->id);
  else snprintf(buf, n, "none");
}

static const char *hint_for(const char *kind) {
  if (kind[0] == 't' && kind[1] == 'h') /* "thread" */
    return "use uvw_to_thread to hand work to another thread: it runs in a fork of the context";
  return "give each task its own fork of the context (uvw_context_fork) instead of sharing one";
}

/* "set of (ns, name)" or the bare operation; "" when neither is known. */
static void what_text(char *buf, size_t n, const char *op, const uvw_var_t *var) {
  if (op && var) snprintf(buf, n, "%s of context variable (%s, %s): ", op, var->ns, var->name);
  else if (op) snprintf(buf, n, "%s: ", op);
  else buf[0] = '\0';
}

static int contention(const uvw__chain_t *c, const char *kind, uint64_t offending_gen,
                      const uvw__task_t *offending_task, int offending_tid, const char *op, const uvw_var_t *var) {
  char id[33], owner_task[24], off_task[24], what[320], owner_name[64], runner_name[64];
  uvw__chain_id_hex(c, id);
  task_text(owner_task, sizeof(owner_task), c->owner_task);
  task_text(off_task, sizeof(off_task), offending_task);
  what_text(what, sizeof(what), op, var);
  uvw__thread_name(c->owner_os_tid, owner_name, sizeof(owner_name));
  if (offending_gen == uvw__tstate.gen) uvw__thread_self_name(runner_name, sizeof(runner_name));
  else uvw__thread_name(offending_tid, runner_name, sizeof(runner_name));
  const char *hint = hint_for(kind);
  uvw_error_t *e = uvw__error_set(UVW_ECONTENTION, UVW_KIND_CHAIN_CONTENTION,
                                  "ChainContention(%s): %schain %s is owned by thread %llu (OS thread %d \"%s\") "
                                  "task %s, but was run by thread %llu (OS thread %d \"%s\") task %s; %s",
                                  kind, what, id, (unsigned long long)c->owner_gen, c->owner_os_tid, owner_name,
                                  owner_task, (unsigned long long)offending_gen, offending_tid, runner_name, off_task,
                                  hint);
  uvw__error_field(e, "chain_id", "%s", id);
  uvw__error_field(e, "kind", "%s", kind);
  uvw__error_field(e, "owner_thread", "%llu", (unsigned long long)c->owner_gen);
  uvw__error_field(e, "offending_thread", "%llu", (unsigned long long)offending_gen);
  uvw__error_field(e, "owner_task", "%s", owner_task);
  uvw__error_field(e, "offending_task", "%s", off_task);
  uvw__error_field(e, "operation", "%s", op ? op : "");
  if (var) uvw__error_field(e, "variable", "(%s, %s)", var->ns, var->name);
  else uvw__error_field(e, "variable", "%s", "");
  uvw__error_field(e, "owner_os_thread", "%d", c->owner_os_tid);
  uvw__error_field(e, "owner_thread_name", "%s", owner_name);
  uvw__error_field(e, "runner_os_thread", "%d", offending_tid);
  uvw__error_field(e, "runner_thread_name", "%s", runner_name);
  uvw__error_field(e, "hint", "%s", hint);
  return UVW_ECONTENTION;
}

int uvw__contention(const uvw__chain_t *c, const char *kind, uint64_t offending_gen,
                    const uvw__task_t *offending_task) {
  /* Callers report the calling thread; another generation has no known OS id. */
  int tid = offending_gen == uvw__tstate.gen ? uvw__tstate.os_tid : 0;
  return contention(c, kind, offending_gen, offending_task, tid, strcmp(kind, "create_task") == 0 ? kind : NULL, NULL);
}

int uvw__guard_fail_op(const uvw__chain_t *c, uvw__thread_t *t, const char *kind, const char *op,
                       const uvw_var_t *var) {
  return contention(c, kind, t->gen, t->task, t->os_tid, op, var);
}

int uvw__guard_fail(const uvw__chain_t *c, uvw__thread_t *t, const char *kind) {
  return uvw__guard_fail_op(c, t, kind, NULL, NULL);
}
