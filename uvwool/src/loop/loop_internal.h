/* Internals of the loop layer: per-loop state, registration records and the
 * frame every trampoline puts around a user callback.
 *
 * A registration record remembers, for one (object, slot), the user's
 * callback(s) and the context + task captured at registration. Records live
 * in a per-loop hash table keyed by the handle or request pointer, so
 * handle->data and req->data stay the user's; they come from a per-loop free
 * list, so registering allocates nothing once the loop is warm. Only the loop
 * thread touches a loop's table (libuv's own threading rule). */
#ifndef UVW_LOOP_INTERNAL_H
#define UVW_LOOP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "context.h"
#include "task.h"
#include "uvwool/loop.h"

typedef void (*uvw__fn)(void);

/* Which registration of an object a record is: a handle has its main
 * callback(s), its close callback and, for a stream that both listens and
 * reads (libuv allows it), its connection callback apart. */
enum { UVW__SLOT_MAIN = 0, UVW__SLOT_CLOSE = 1, UVW__SLOT_LISTEN = 2 };

typedef struct uvw__reg_s {
  const void *key;
  unsigned slot;
  struct uvw__reg_s *next;  /* bucket chain, free list or call-soon queue */
  uvw_context_t *ctx;       /* captured context (a reference); NULL once stopped */
  uvw__task_t *task;        /* captured task (a reference and a pending count) */
  uvw_context_t *retired;   /* replaced while its callback ran: dropped after */
  uvw__fn cb, cb2;          /* the user's callbacks, cast back by the trampoline */
  void *extra;              /* family-specific (call-soon argument, ...) */
  unsigned busy;            /* callbacks of this record on the stack */
  unsigned char dead;       /* released while busy: freed when busy drops to 0 */
  unsigned char in_table;
} uvw__reg_t;

typedef struct uvw__ts_entry_s uvw__ts_entry_t;

typedef struct uvw__loop_s {
  uv_loop_t *loop;
  uint64_t serial; /* process-unique: tells this state from a later one at the same loop address */
  uvw__reg_t **buckets;
  size_t nbuckets, count;
  uvw__reg_t *free_list;
  void *chunks; /* record chunks, freed at close */
  /* call-soon: a FIFO drained by an idle handle active only while non-empty */
  uv_idle_t soon_idle;
  uvw__reg_t *soon_head, *soon_tail;
  int soon_ready;
  /* thread-safe call-soon: an MPSC list under a mutex, drained by an unref'd async */
  uv_async_t ts_async;
  pthread_mutex_t ts_lock;
  uvw__ts_entry_t *ts_head, *ts_tail;
  int ts_ready;
  /* the task factory chain */
  uvw_task_factory_t *factory_top;
  int factory_installed; /* uvwool's factory was installed once: displacement is reportable */
  void *owned_factory;   /* uvwool's factory object for this loop */
} uvw__loop_t;

/* The loop's state, created on first use (loop thread only). NULL on ENOMEM. */
uvw__loop_t *uvw__loop_get(uv_loop_t *loop);
/* The loop's state if it exists, else NULL. */
uvw__loop_t *uvw__loop_find(uv_loop_t *loop);
/* Initialise the call-soon idle handle on first use: 0 or a libuv error. */
int uvw__loop_soon_init(uvw__loop_t *L);
/* Queue a prepared record on the call-soon FIFO (its idle handle is ready):
 * r->cb(r->extra) runs on a later step of the loop, r->cb2(r->extra) instead
 * if the loop closes first. Cannot fail. */
void uvw__soon_push(uvw__loop_t *L, uvw__reg_t *r);

/* ---- records ---------------------------------------------------------------- */

/* A detached record capturing the current context and task, for (key, slot)
 * with the user's callbacks. NULL with the detail published on ENOMEM. */
uvw__reg_t *uvw__reg_prepare(uvw__loop_t *L, const void *key, unsigned slot, uvw__fn cb, uvw__fn cb2);
/* Publish a prepared record once libuv accepted the registration, replacing
 * an existing one for (key, slot). */
void uvw__reg_commit(uvw__loop_t *L, uvw__reg_t *r);
/* A blank record from the loop's pool, captured nothing: for a queue entry
 * that must not fail later (a task's done notification). NULL with the
 * detail published on ENOMEM; give it back with uvw__reg_discard. */
uvw__reg_t *uvw__reg_reserve(uvw__loop_t *L);
/* Drop a prepared record libuv refused. */
void uvw__reg_discard(uvw__loop_t *L, uvw__reg_t *r);
uvw__reg_t *uvw__reg_find(uvw__loop_t *L, const void *key, unsigned slot);
/* Stop: release the captured context and task (the record keeps the user's
 * callback, so a raw uv_*_again/start on the handle still reaches it). */
void uvw__reg_stop(uvw__loop_t *L, const void *key, unsigned slot);
/* Completion or close: release the record (deferred while its callback runs). */
void uvw__reg_release(uvw__loop_t *L, uvw__reg_t *r);
void uvw__reg_release_key(uvw__loop_t *L, const void *key, unsigned slot);
/* Free every record of the loop (at uvw_loop_close). */
void uvw__reg_free_all(uvw__loop_t *L);
/* Drop a captured context / task pair (the task's pending count too). */
void uvw__capture_release(uvw_context_t *ctx, uvw__task_t *task);
/* Capture the current context and task: new references, task pending +1. */
int uvw__capture(uvw_context_t **ctx, uvw__task_t **task);

/* ---- the frame around a user callback ------------------------------------- */

typedef struct uvw__frame_s {
  uvw_context_t *ctx;      /* entered for the callback, or NULL */
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
  t->task = task;
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
  if (f->ctx) uvw__context_leave(f->ctx);
  t->task = f->prev_task;
  t->write_hook = f->prev_hook;
  t->write_hook_arg = f->prev_hook_arg;
}

/* Around a record's callback: the record stays alive until the end even if
 * the callback stops, closes or re-registers its own handle. */
static inline void uvw__reg_begin(uvw__frame_t *f, uvw__loop_t *L, uvw__reg_t *r) {
  r->busy++;
  uvw__frame_begin(f, L, r->ctx, r->task);
}
void uvw__reg_end_slow(uvw__loop_t *L, uvw__reg_t *r);
static inline void uvw__reg_end(uvw__frame_t *f, uvw__loop_t *L, uvw__reg_t *r) {
  uvw__frame_end(f);
  if (--r->busy == 0 && (r->retired || r->dead)) uvw__reg_end_slow(L, r);
}

/* A trampoline that finds no record (a handle driven past uvwool, e.g. a raw
 * uv_close then reuse) reports it once per call as a warning. */
void uvw__reg_missing(const char *where, const void *key);

/* Loop tasks embed the core task first. The body holds one pending count
 * of the core task (registrations captured under it hold the others). */
typedef struct uvw__loop_task_s {
  uvw__task_t core;
  uv_loop_t *loop;
  uint64_t loop_serial; /* the state that queued it (uvw__loop_t.serial) */
  uvw_task_body_cb fn;
  void *arg;
  uvw_task_done_cb done_cb;
  void *done_arg;
  uvw__reg_t *done_rec; /* reserved at creation: finishing queues it and cannot fail */
} uvw__loop_task_t;

#endif

/* ---- the two halves of every wrapper and trampoline ---------------------- */

/* Wrapper, before calling libuv: capture for (key, slot). 0 or UV_ENOMEM /
 * UV_EINVAL (loop NULL). */
static inline int uvw__register(uv_loop_t *loop, const void *key, unsigned slot, uvw__fn cb, uvw__fn cb2,
                                uvw__loop_t **L, uvw__reg_t **r) {
  *L = loop ? uvw__loop_get(loop) : NULL;
  if (*L == NULL) return loop ? UV_ENOMEM : UV_EINVAL;
  *r = uvw__reg_prepare(*L, key, slot, cb, cb2);
  return *r ? 0 : UV_ENOMEM;
}

/* Wrapper, after calling libuv: keep the capture only if libuv accepted. */
static inline int uvw__registered(uvw__loop_t *L, uvw__reg_t *r, int rc) {
  if (rc == 0)
    uvw__reg_commit(L, r);
  else
    uvw__reg_discard(L, r);
  return rc;
}

/* Trampoline: the record of (key, slot), or NULL (warned). */
static inline uvw__reg_t *uvw__lookup(uv_loop_t *loop, const void *key, unsigned slot, uvw__loop_t **L,
                                      const char *where) {
  *L = uvw__loop_find(loop);
  uvw__reg_t *r = *L ? uvw__reg_find(*L, key, slot) : NULL;
  if (r == NULL) uvw__reg_missing(where, key);
  return r;
}

/* A one-shot record is consumed by its callback; a re-registration of the
 * same request from inside the callback revives it. */
static inline void uvw__oneshot_begin(uvw__frame_t *f, uvw__loop_t *L, uvw__reg_t *r) {
  uvw__reg_begin(f, L, r);
  r->dead = 1;
}

/* uvw_loop_call_soon with `drop(arg)` called instead of cb if the loop closes
 * before the entry ran (for arguments the entry owns). */
int uvw__loop_call_soon_ex(uv_loop_t *loop, uvw_soon_cb cb, void *arg, uvw_soon_cb drop);

/* The internal handles' callbacks. */
void uvw__soon_drain(uv_idle_t *idle);
void uvw__ts_drain(uv_async_t *async);

/* Release every capture of a handle (close). */
void uvw__handle_release(uv_handle_t *handle);
/* The alloc callback's trampoline for reads and udp receives (slot MAIN,
 * the record's cb2). */
void uvw__alloc_trampoline(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf);
/* The close callback's trampoline (slot CLOSE, one-shot), for every close. */
void uvw__close_trampoline(uv_handle_t *handle);
