/* What the layers above the loop (dispatch) may use of it: capture the
 * current context and task the way a registration does, and run a callback
 * in a capture (the frame). The rest of the loop layer's internals stay in
 * loop_internal.h, which the build does not let the upper layers include. */
#ifndef UVW_LOOP_SCOPE_H
#define UVW_LOOP_SCOPE_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "context.h"
#include "task.h"

/* A loop's uvwool state (opaque here). */
typedef struct uvw__loop_s uvw__loop_t;

/* The loop's state, created on first use (loop thread only). NULL on ENOMEM. */
uvw__loop_t *uvw__loop_get(uv_loop_t *loop);
/* The loop's state if it exists, else NULL. The registry is a short list
 * under a mutex (loopstate.c); every trampoline and wrapper asks, so the
 * answer is cached per thread, inline, for one loop. A process-wide
 * generation, bumped when a state is freed, invalidates every cache, so a
 * new loop at a recycled address never finds a stale state. */
typedef struct {
  uv_loop_t *loop;
  uvw__loop_t *state;
  uint64_t gen;
} uvw__loop_cache_t;
extern __thread uvw__loop_cache_t uvw__loop_cache __attribute__((tls_model("initial-exec")));
extern atomic_uint_fast64_t uvw__loop_registry_gen;
uvw__loop_t *uvw__loop_find_slow(uv_loop_t *loop);
static inline uvw__loop_t *uvw__loop_find(uv_loop_t *loop) {
  uvw__loop_cache_t *c = &uvw__loop_cache;
  if (__builtin_expect(c->loop == loop && c->gen == atomic_load_explicit(&uvw__loop_registry_gen, memory_order_acquire), 1))
    return c->state;
  return uvw__loop_find_slow(loop);
}

/* Drop a captured context / task pair (the task's pending count too). */
void uvw__capture_release(uvw_context_t *ctx, uvw__task_t *task);
/* Capture the current context and task: new references, task pending +1. */
int uvw__capture(uvw_context_t **ctx, uvw__task_t **task);

/* ---- the frame around a user callback ------------------------------------- */

typedef struct uvw__frame_s {
  uvw_context_t *ctx;      /* entered for the callback, or NULL */
  uvw__task_t *task;       /* current for the callback */
  uvw__task_t *prev_task;
  int (*prev_hook)(void *, int);
  void *prev_hook_arg;
} uvw__frame_t;

int uvw__loop_write_hook(void *arg, int arming);

/* Enter ctx with task current and the loop's write hook installed. */
static inline void uvw__frame_begin(uvw__frame_t *f, uvw__loop_t *L, uvw_context_t *ctx, uvw__task_t *task) {
  uvw__thread_t *t = uvw__thread();
  f->prev_task = t->task;
  f->prev_hook = t->write_hook;
  f->prev_hook_arg = t->write_hook_arg;
  t->task = f->task = task;
  /* Off the loop thread (L == NULL) there is no task factory to guard. */
  t->write_hook = L ? uvw__loop_write_hook : NULL;
  t->write_hook_arg = L;
  /* Entering fails only if the context is entered elsewhere (a bug of the
   * caller's) or a fork cannot be claimed for lack of memory: the callback
   * still runs, in whatever context is current, rather than being lost. */
  f->ctx = ctx && uvw__context_enter_owned(ctx) == 0 ? ctx : NULL;
}

static inline void uvw__frame_end(uvw__frame_t *f) {
  uvw__thread_t *t = &uvw__tstate;
  /* A runtime task entered by the callback and still current: unwinding its
   * context would leave it entered forever (it could neither be left nor
   * finished), so it is suspended first, loudly. */
  if (__builtin_expect(t->task != f->task, 0)) uvw__task_suspend_strays(f->task);
  if (f->ctx) uvw__context_leave(f->ctx);
  t->task = f->prev_task;
  t->write_hook = f->prev_hook;
  t->write_hook_arg = f->prev_hook_arg;
}

#endif
