/* Tasks of the core: the object every kind of task shares, and runtime
 * tasks (a language runtime's coroutine, fiber or async scope). */
#include "task.h"

#include <stdio.h>

#include "alloc.h"
#include "context.h"
#include "error.h"

static atomic_uint_fast64_t next_task_id = 1;

void uvw__task_init(uvw__task_t *task, const uvw__task_ops_t *ops) {
  atomic_init(&task->refs, 1);
  atomic_init(&task->pending, 0);
  atomic_init(&task->finished, 0);
  task->id = atomic_fetch_add(&next_task_id, 1);
  task->ops = ops;
  task->ctx = task->top = NULL;
  task->prev_task = NULL;
  task->entered = task->stray = 0;
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
  uvw__task_drop_context(task);
  if (task->ops && task->ops->destroy)
    task->ops->destroy(task);
  else
    uvw__free(task);
}

void uvw__task_finish(uvw__task_t *task) { atomic_store_explicit(&task->finished, 1, memory_order_release); }

void uvw__task_pending_done(uvw__task_t *task) {
  if (atomic_fetch_sub_explicit(&task->pending, 1, memory_order_acq_rel) == 1 && task->ops && task->ops->drained)
    task->ops->drained(task);
}

uvw__task_t *uvw__task_swap_current(uvw__task_t *task) {
  uvw__thread_t *t = uvw__thread();
  uvw__task_t *prev = t->task;
  t->task = task;
  return prev;
}

/* Who has c entered, as readers see it (context.h): the thread that runs the
 * task, or UVW__ENTERED_HELD while it is suspended, so the thread that left
 * it does not take c for its own (and skip the reader handshake) while
 * another thread resumes the task and writes. */
static void set_entered_by(uvw_context_t *c, uint64_t by) {
  atomic_store_explicit(&c->entered_by, by, memory_order_relaxed);
}

/* Contexts a task left entered above its own when it was suspended (it
 * yielded inside a `run`): the task holds a reference to each while it is
 * suspended, because whoever entered them is suspended with it and may be
 * collected before the task is finished. Rare, so the cost of the references
 * stays off the common resume. */
static void hold_saved(uvw_context_t *top, const uvw_context_t *ctx) {
  for (uvw_context_t *c = top; c != ctx; c = c->prev) {
    uvw_context_ref(c);
    set_entered_by(c, UVW__ENTERED_HELD); /* still entered (nobody else may enter it), by no thread */
  }
}

/* Back on the stack at an enter: their enterers are alive again (the task is
 * resumed, not collected), so dropping the task's references frees nothing. */
static void release_saved(uvw_context_t *top, const uvw_context_t *ctx, const uvw__thread_t *t) {
  for (uvw_context_t *c = top, *next; c != ctx; c = next) {
    next = c->prev;
    set_entered_by(c, t->gen);
    uvw_context_unref(c);
  }
}

/* The task is gone: what it left entered is on no thread's stack any more
 * and can be entered again. */
static void unwind_saved(uvw__task_t *task) {
  for (uvw_context_t *c = task->top, *next; c != NULL && c != task->ctx; c = next) {
    next = c->prev;
    c->prev = NULL;
    atomic_store_explicit(&c->entered_by, 0, memory_order_release);
    uvw_context_unref(c);
  }
  task->top = NULL;
}

void uvw__task_drop_context(uvw__task_t *task) {
  unwind_saved(task);
  uvw_context_t *ctx = task->ctx;
  task->ctx = NULL;
  uvw_context_unref(ctx);
}

int uvw__task_claim_prepare(uvw_context_t *ctx, uvw__task_t *task, uvw__chain_t **stamped) {
  *stamped = NULL;
  uvw__thread_t *t = uvw__thread();
  /* The stamp is a write: whoever holds a copy of ctx's state to take (the
   * loop's shared capture) takes it now (thread.h, write_hook). */
  if (t->write_hook && atomic_load_explicit(&ctx->entered_by, memory_order_relaxed) == t->gen) {
    int rc = t->write_hook(t->write_hook_arg, UVW__WRITE_CLAIM);
    if (rc != 0) return rc;
  }
  uvw__chain_t *c = ctx->chain;
  if (c == NULL) return 0; /* unarmed contexts are shared freely */
  if (c->owner_task && !uvw__task_finished(c->owner_task))
    return uvw__contention(c, "create_task", t->gen, task);
  if ((*stamped = uvw__chain_clone(c)) == NULL) return uvw__error_nomem("chain");
  uvw__chain_set_owner(*stamped, c->owner_gen, task);
  return 0;
}

void uvw__task_claim_commit(uvw_context_t *ctx, uvw__chain_t *stamped) {
  if (stamped == NULL) return;
  /* Other threads may be copying ctx: publish in a write section. */
  uvw__context_write_begin_unentered(ctx);
  uvw__chain_t *old = ctx->chain;
  ctx->chain = stamped;
  uvw__context_write_end(ctx);
  uvw__chain_unref(old);
}

void uvw__task_claim_cancel(uvw__chain_t *stamped) { uvw__chain_unref(stamped); }

int uvw__task_claim_context(uvw_context_t *ctx, uvw__task_t *task) {
  uvw__chain_t *stamped;
  int rc = uvw__task_claim_prepare(ctx, task, &stamped);
  if (rc == 0) uvw__task_claim_commit(ctx, stamped);
  return rc;
}

/* ---- runtime tasks: creation ---------------------------------------------------- */

static int bad_arg(const char *fn, const char *what) {
  uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "%s: %s", fn, what);
  return UVW_EINVAL;
}

int uvw_task_new(uvw_context_t *parent, uvw_task_t **out) {
  if (out == NULL) return bad_arg("uvw_task_new", "out is NULL");
  if (parent == NULL && (parent = uvw__context_current()) == NULL) return UVW_ENOMEM;
  uvw__task_t *task = uvw__task_new();
  if (task == NULL) return uvw__error_nomem("task");
  if ((task->ctx = uvw_context_fork(parent, UVW_PROPAGATE_FORK)) == NULL) {
    uvw__free(task);
    return UVW_ENOMEM;
  }
  *out = task;
  return 0;
}

int uvw_task_new_in(uvw_context_t *ctx, uvw_task_t **out) {
  if (ctx == NULL || out == NULL) return bad_arg("uvw_task_new_in", "ctx or out is NULL");
  /* The claim writes ctx, and only the thread that has a context entered
   * writes it (context.h): a context running on another thread is refused,
   * as its enter would be. */
  uint64_t by = atomic_load_explicit(&ctx->entered_by, memory_order_acquire);
  if (by != 0 && by != UVW__ENTERED_HELD && by != uvw__thread()->gen) return uvw__context_entered_error(ctx);
  uvw__task_t *task = uvw__task_new();
  if (task == NULL) return uvw__error_nomem("task");
  int rc = uvw__task_claim_context(ctx, task);
  if (rc != 0) {
    uvw__free(task);
    return rc;
  }
  task->ctx = uvw_context_ref(ctx);
  *out = task;
  return 0;
}

/* ---- runtime tasks: enter / leave / finish ---------------------------------------- */

/* The error of a call that loop tasks or NULL cannot take, else 0. */
static int not_runtime(const char *fn, const uvw__task_t *task) {
  if (task == NULL) return bad_arg(fn, "task is NULL");
  if (task->ops == NULL) return 0;
  uvw_error_t *e = uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR,
                                  "%s: task %llu is a loop task: its loop makes it current and finishes it", fn,
                                  (unsigned long long)task->id);
  uvw__error_field(e, "task", "%llu", (unsigned long long)task->id);
  return UVW_EINVAL;
}

static int task_error(int code, const char *fn, const uvw__task_t *task, const char *why) {
  uvw_error_t *e = uvw__error_set(code, UVW_KIND_RUNTIME_ERROR, "%s: task %llu %s", fn,
                                  (unsigned long long)task->id, why);
  uvw__error_field(e, "task", "%llu", (unsigned long long)task->id);
  return code;
}

/* The task's own context goes on the stack, then whatever it left above it.
 * The enter is the checked one (a compare-and-swap) even for the task's own
 * fork: uvw_task_context hands the fork out, so other threads may be
 * copying it, and the reader handshake (core/context.h) lets a reader of a
 * context entered nowhere skip the kernel barrier only because an enter is
 * a full barrier that orders the enterer's first write after the reader's
 * announcement. One compare-and-swap per resume, not per access. */
int uvw_task_enter(uvw_task_t *task) {
  int rc = not_runtime("uvw_task_enter", task);
  if (rc != 0) return rc;
  if (uvw__task_finished(task) || task->ctx == NULL)
    return task_error(UVW_EINVAL, "uvw_task_enter", task, "has finished: it cannot run again");
  if (task->entered)
    return task_error(UVW_EENTERED, "uvw_task_enter", task, "is already entered (it is running)");
  uvw__thread_t *t = uvw__thread();
  uvw__task_t *prev = t->task;
  t->task = task; /* first, so a fork claimed now is stamped with the task */
  rc = uvw_context_enter(task->ctx);
  if (rc != 0) {
    t->task = prev;
    return rc;
  }
  if (__builtin_expect(task->top != NULL, 0)) {
    t->current = task->top;
    release_saved(task->top, task->ctx, t);
    task->top = NULL;
  }
  task->prev_task = prev;
  task->entered = 1;
  task->stray = 0;
  return 0;
}

/* Leaving an entered task that is not the current one: a task entered after
 * it (a nested resume) is still current, or it runs on another thread. */
static int not_current(const uvw__task_t *task, const uvw__task_t *current) {
  char cur[32] = "none";
  if (current) snprintf(cur, sizeof cur, "task %llu", (unsigned long long)current->id);
  uvw_error_t *e = uvw__error_set(UVW_ENOTENTERED, UVW_KIND_RUNTIME_ERROR,
                                  "uvw_task_leave: task %llu is not the current task (current: %s): leave the "
                                  "innermost task first, on the thread that entered it",
                                  (unsigned long long)task->id, cur);
  uvw__error_field(e, "task", "%llu", (unsigned long long)task->id);
  uvw__error_field(e, "current_task", "%llu", (unsigned long long)(current ? current->id : 0));
  return UVW_ENOTENTERED;
}

/* Whether ctx is on the thread's stack at or below the current context. */
static int on_stack(const uvw__thread_t *t, const uvw_context_t *ctx) {
  const uvw_context_t *c = t->current;
  while (c != NULL && c != ctx && c != t->base) c = c->prev;
  return c == ctx;
}

int uvw_task_leave(uvw_task_t *task) {
  int rc = not_runtime("uvw_task_leave", task);
  if (rc != 0) return rc;
  if (!task->entered && task->stray) {
    task->stray = 0; /* the loop suspended it already: this is the leave it stood for */
    return 0;
  }
  if (!task->entered) return task_error(UVW_ENOTENTERED, "uvw_task_leave", task, "is not entered");
  uvw__thread_t *t = uvw__thread();
  if (t->task != task) return not_current(task, t->task);
  uvw_context_t *ctx = task->ctx;
  if (!on_stack(t, ctx))
    return task_error(UVW_ENOTENTERED, "uvw_task_leave", task,
                      "lost its context: code inside the task exited the task's own context");
  if (__builtin_expect(t->current != ctx, 0)) {
    task->top = t->current;
    hold_saved(task->top, ctx);
  }
  t->current = ctx->prev;
  ctx->prev = NULL;
  atomic_store_explicit(&ctx->entered_by, 0, memory_order_release); /* as uvw_context_exit */
  t->task = task->prev_task;
  task->prev_task = NULL;
  task->entered = 0;
  return 0;
}

/* Suspend the current runtime task as its leave would; when code inside it
 * already exited its context (the leave would refuse), just make it
 * unentered: the frame's unwinding then exits whatever is left. */
static void suspend_stray(uvw__thread_t *t, uvw__task_t *task) {
  int lost = !on_stack(t, task->ctx);
  uvw_error_t *w = uvw__error_new(0, UVW_KIND_WOOL_WARNING,
                                  "task %llu was still entered at the end of a loop callback: suspended it "
                                  "(call uvw_task_leave before the callback returns)%s",
                                  (unsigned long long)task->id, lost ? "; it had lost its context" : "");
  if (w) uvw__error_field(w, "task", "%llu", (unsigned long long)task->id);
  if (lost || uvw_task_leave(task) != 0) {
    t->task = task->prev_task;
    task->prev_task = NULL;
    task->entered = 0;
  }
  task->stray = 1;
  if (w) uvw__warn(w);
}

void uvw__task_suspend_strays(const uvw__task_t *frame_task) {
  uvw__thread_t *t = uvw__thread();
  for (int guard = 0; guard < 1024; guard++) {
    uvw__task_t *task = t->task;
    if (task == frame_task || task == NULL || task->ops != NULL || !task->entered) return;
    suspend_stray(t, task);
  }
}

int uvw_task_finish(uvw_task_t *task) {
  int rc = not_runtime("uvw_task_finish", task);
  if (rc != 0) return rc;
  if (uvw__task_finished(task)) return 0;
  if (task->entered) return task_error(UVW_EENTERED, "uvw_task_finish", task, "is entered: leave it first");
  uvw__task_finish(task);
  uvw__task_drop_context(task);
  return 0;
}

/* ---- every task ------------------------------------------------------------------ */

uvw_task_t *uvw_task_current(void) { return uvw__thread()->task; }
uvw_task_t *uvw_task_ref(uvw_task_t *task) { return uvw__task_ref(task); }
void uvw_task_unref(uvw_task_t *task) { uvw__task_unref(task); }
int uvw_task_finished(const uvw_task_t *task) { return task && uvw__task_finished(task); }
uint64_t uvw_task_id(const uvw_task_t *task) { return task ? task->id : 0; }
uvw_context_t *uvw_task_context(const uvw_task_t *task) { return task ? task->ctx : NULL; }
