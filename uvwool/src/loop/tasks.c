/* Tasks: a unit of concurrent work with its own forked chain (asyncio's
 * Task), spawned through the loop's task factory. */
#include "alloc.h"
#include "error.h"
#include "loop_internal.h"

static void task_destroy(uvw__task_t *core) { uvw__free(core); }
static void task_drained(uvw__task_t *core);
static const uvw__task_ops_t loop_task_ops = {task_destroy, task_drained};

static uvw__loop_task_t *loop_task(uvw__task_t *core) { return (uvw__loop_task_t *)core; }

/* Runs from the loop's call-soon queue, never inside the call that released
 * the task's last registration: the done callback, in the task's context
 * with no task current (the task is finished, so nothing it owned can
 * contend). */
static void run_done(void *arg) {
  uvw__loop_task_t *task = arg;
  uvw__frame_t f;
  uvw__frame_begin(&f, uvw__loop_find(task->loop), task->core.ctx, NULL);
  task->done_cb(&task->core, task->done_arg);
  uvw__frame_end(&f);
  uvw__task_drop_context(&task->core);
  uvw__task_unref(&task->core); /* the queue's reference */
}

/* The loop closed before the done callback could run: it never runs. */
static void drop_done(void *arg) {
  uvw__loop_task_t *task = arg;
  uvw__task_drop_context(&task->core);
  uvw__task_unref(&task->core);
}

/* The body and every registration made under the task are done: the task is
 * finished now (asyncio's done() is true before its callbacks are
 * scheduled), and its done callback is queued on the record reserved at
 * creation, so this cannot fail. The task's chain names the task as its
 * owner, so task -> context -> chain -> task is a cycle while the task
 * runs: a finished task lets go of its context (after its done callback)
 * to break it. */
static void task_drained(uvw__task_t *core) {
  uvw__loop_task_t *task = loop_task(core);
  uvw__task_finish(core);
  uvw__reg_t *r = task->done_rec;
  task->done_rec = NULL;
  /* No state (the loop is closing: uvw_loop_close frees the records, the
   * reserved one with them) or a later state at the same loop address: the
   * done callback can no longer run on the loop that owned the task. */
  uvw__loop_t *L = r ? uvw__loop_find(task->loop) : NULL;
  if (L == NULL || L->serial != task->loop_serial) {
    uvw__task_drop_context(core);
    return;
  }
  r->cb = (uvw__fn)run_done;
  r->cb2 = (uvw__fn)drop_done;
  r->extra = uvw__task_ref(core);
  uvw__soon_push(L, r);
}

/* Runs on the loop: the body, with the task current in its context. */
static void task_start(void *arg) {
  uvw__loop_task_t *task = arg;
  uvw__loop_t *L = uvw__loop_find(task->loop);
  uvw__frame_t f;
  uvw__frame_begin(&f, L, task->core.ctx, &task->core);
  task->fn(&task->core, task->arg);
  uvw__frame_end(&f);
  uvw__task_pending_done(&task->core); /* the body's own count */
  uvw__task_unref(&task->core);        /* the reference the queue held */
}

/* The loop closed before the task started: it finishes without running
 * (no done callback: it never began) and lets go of what the queue held. */
static void task_abandon(void *arg) {
  uvw__loop_task_t *task = arg;
  uvw__task_finish(&task->core);
  task->done_rec = NULL; /* freed with the loop's records */
  uvw__task_drop_context(&task->core);
  uvw__task_unref(&task->core);
}

/* uvwool's own creation: the fork (or the explicit context), then the
 * start queued on the loop. */
static int uvwool_create(uvw_task_factory_t *self, uv_loop_t *loop, uvw_task_body_cb fn, void *arg,
                         const uvw_task_options_t *opts, uvw_task_t **out) {
  (void)self;
  uvw__loop_t *L = uvw__loop_get(loop);
  if (L == NULL) return uvw_error_code(uvw_last_error());
  uvw__loop_task_t *task = uvw__calloc(1, sizeof(*task));
  if (task == NULL) return uvw__error_nomem("task");
  uvw__task_init(&task->core, &loop_task_ops);
  atomic_init(&task->core.pending, 1);
  task->loop = loop;
  task->loop_serial = L->serial;
  task->fn = fn;
  task->arg = arg;
  if (opts) {
    task->done_cb = opts->done_cb;
    task->done_arg = opts->done_arg;
  }
  /* An explicit context is claimed last, once nothing can fail any more:
   * a failed creation must not leave the context's chain naming a task that
   * never runs (the next creation in it would be refused). */
  int rc = 0;
  uvw__chain_t *stamped = NULL;
  if (opts && opts->context) {
    rc = uvw__task_claim_prepare(opts->context, &task->core, &stamped);
    if (rc == 0) task->core.ctx = uvw_context_ref(opts->context);
  } else {
    uvw_context_t *cur = uvw_context_current();
    task->core.ctx = cur ? uvw_context_fork(cur, UVW_PROPAGATE_FORK) : NULL;
    if (task->core.ctx == NULL) rc = UVW_ENOMEM;
  }
  if (rc == 0 && task->done_cb && (task->done_rec = uvw__reg_reserve(L)) == NULL) rc = UVW_ENOMEM;
  if (rc == 0) {
    uvw__task_ref(&task->core); /* held by the queued start */
    uvw__task_t *outer = uvw__tstate.task;
    uvw__tstate.task = NULL; /* the start is not a registration of the spawning task */
    rc = uvw__loop_call_soon_ex(loop, task_start, task, task_abandon);
    uvw__tstate.task = outer;
    if (rc != 0) uvw__task_unref(&task->core);
  }
  if (rc != 0) {
    uvw__task_claim_cancel(stamped);
    if (task->done_rec) uvw__reg_discard(L, task->done_rec);
    task->done_rec = NULL;
    uvw__task_unref(&task->core);
    return rc;
  }
  if (stamped) uvw__task_claim_commit(opts->context, stamped);
  if (out)
    *out = &task->core;
  else
    uvw__task_unref(&task->core);
  return 0;
}

int uvw_task_create(uv_loop_t *loop, uvw_task_body_cb fn, void *arg, const uvw_task_options_t *opts, uvw_task_t **out) {
  if (loop == NULL || fn == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_task_create: loop or fn is NULL");
    return UVW_EINVAL;
  }
  return uvwool_create(NULL, loop, fn, arg, opts, out);
}

static uvw_task_factory_t uvwool_factory_proto = {uvwool_create, NULL, NULL};

int uvw_task_spawn(uv_loop_t *loop, uvw_task_body_cb fn, void *arg, const uvw_task_options_t *opts, uvw_task_t **out) {
  if (loop == NULL || fn == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_task_spawn: loop or fn is NULL");
    return UVW_EINVAL;
  }
  uvw__loop_t *L = uvw__loop_get(loop);
  if (L == NULL) return uvw_error_code(uvw_last_error());
  uvw_task_factory_t *top = L->factory_top ? L->factory_top : &uvwool_factory_proto;
  return top->create(top, loop, fn, arg, opts, out);
}

/* ---- the factory chain ----------------------------------------------------- */

/* uvwool's factory wraps whatever was installed: it forks, then lets the
 * inner factory create the task in that fork (so the inner one still runs). */
static int uvwool_wrapping_create(uvw_task_factory_t *self, uv_loop_t *loop, uvw_task_body_cb fn, void *arg,
                                  const uvw_task_options_t *opts, uvw_task_t **out) {
  if (self->inner == NULL) return uvwool_create(self, loop, fn, arg, opts, out);
  if (opts && opts->context) return self->inner->create(self->inner, loop, fn, arg, opts, out);
  uvw_context_t *cur = uvw_context_current();
  uvw_context_t *fork = cur ? uvw_context_fork(cur, UVW_PROPAGATE_FORK) : NULL;
  if (fork == NULL) return UVW_ENOMEM;
  uvw_task_options_t forked = {fork, opts ? opts->done_cb : NULL, opts ? opts->done_arg : NULL};
  int rc = self->inner->create(self->inner, loop, fn, arg, &forked, out);
  uvw_context_unref(fork);
  return rc;
}

static int is_uvwool_factory(const uvw_task_factory_t *f) { return f && f->create == uvwool_wrapping_create; }

static int reachable(const uvw_task_factory_t *top) {
  for (int depth = 0; top && depth < 64; top = top->inner, depth++)
    if (is_uvwool_factory(top)) return 1;
  return 0;
}

/* uvwool's factory objects of a loop. A re-install after a displacement
 * makes a new one; the old one is kept until the loop closes, because the
 * factory that displaced it may still call it. */
typedef struct owned_factory_s {
  uvw_task_factory_t factory;
  struct owned_factory_s *next;
} owned_factory_t;

static int install(uvw__loop_t *L) {
  if (reachable(L->factory_top)) return 0; /* installed, possibly buried: not again */
  owned_factory_t *of = uvw__calloc(1, sizeof(*of));
  if (of == NULL) return uvw__error_nomem("task factory");
  of->factory.create = uvwool_wrapping_create;
  of->factory.inner = L->factory_top;
  of->factory.data = L->loop;
  of->next = L->owned_factory;
  L->owned_factory = of;
  L->factory_top = &of->factory;
  L->factory_installed = 1;
  return 0;
}

int uvw_loop_install_task_factory(uv_loop_t *loop) {
  if (loop == NULL) return uvw__error_arg(__func__, "loop", "is NULL");
  uvw__loop_t *L = loop ? uvw__loop_get(loop) : NULL;
  if (L == NULL) return loop ? uvw_error_code(uvw_last_error()) : UVW_EINVAL;
  return install(L);
}

int uvw_loop_set_task_factory(uv_loop_t *loop, uvw_task_factory_t *factory) {
  if (loop == NULL) return uvw__error_arg(__func__, "loop", "is NULL");
  /* A factory without create would crash the next uvw_task_spawn. */
  if (factory && factory->create == NULL) return uvw__error_arg(__func__, "factory->create", "is NULL");
  uvw__loop_t *L = loop ? uvw__loop_get(loop) : NULL;
  if (L == NULL) return loop ? uvw_error_code(uvw_last_error()) : UVW_EINVAL;
  L->factory_top = factory;
  return 0;
}

uvw_task_factory_t *uvw_loop_task_factory(uv_loop_t *loop) {
  uvw__loop_t *L = loop ? uvw__loop_find(loop) : NULL;
  return L ? L->factory_top : NULL;
}

int uvw_loop_task_factory_installed(uv_loop_t *loop) {
  uvw__loop_t *L = loop ? uvw__loop_find(loop) : NULL;
  return L && reachable(L->factory_top);
}

/* Called before every set/reset/mount made inside a callback of the loop,
 * and before a task claims a context entered here (UVW__WRITE_CLAIM). */
int uvw__loop_write_hook(void *arg, int arming) {
  uvw__loop_t *L = arg;
  /* A capture shared with the running callback (reg.c) is split off before
   * anything is written: it must keep the value it had at registration. */
  if (__builtin_expect(uvw__reg_sharing != NULL, 0)) {
    int rc = uvw__reg_share_split();
    if (rc != 0) return rc;
  }
  if (arming == UVW__WRITE_CLAIM) return 0;
  if (__builtin_expect(is_uvwool_factory(L->factory_top), 1)) return 0;
  if (!L->factory_installed) return arming ? install(L) : 0;
  if (reachable(L->factory_top)) return 0;
  uvw_error_t *e = uvw__error_set(UVW_EDISPLACED, UVW_KIND_TASK_FACTORY_DISPLACED,
                                  "uvwool's task factory on loop %p was displaced by a factory that does not "
                                  "wrap it: spawned tasks would not fork their context (install it again with "
                                  "uvw_loop_install_task_factory)",
                                  (void *)L->loop);
  uvw__error_field(e, "loop", "%p", (void *)L->loop);
  return UVW_EDISPLACED;
}

void uvw__factory_free(uvw__loop_t *L) {
  for (owned_factory_t *of = L->owned_factory, *next; of; of = next) {
    next = of->next;
    uvw__free(of);
  }
  L->owned_factory = NULL;
}
