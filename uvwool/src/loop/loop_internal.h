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
#include "loop_scope.h"
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
  unsigned char fresh;      /* ctx not entered since it was captured (uvw__reg_renewable) */
} uvw__reg_t;

typedef struct uvw__ts_entry_s uvw__ts_entry_t;

struct uvw__loop_s {
  uv_loop_t *loop;
  uint64_t serial; /* process-unique: tells this state from a later one at the same loop address */
  uvw__reg_t **buckets;
  size_t nbuckets, count;
  uvw__reg_t *last_found; /* one-entry cache of uvw__reg_find: a trampoline and the restart it makes */
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
};

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
uvw__reg_t *uvw__reg_find_slow(uvw__loop_t *L, const void *key, unsigned slot);
static inline uvw__reg_t *uvw__reg_find(uvw__loop_t *L, const void *key, unsigned slot) {
  uvw__reg_t *r = L->last_found;
  if (__builtin_expect(r != NULL && r->key == key && r->slot == slot, 1)) return r;
  return uvw__reg_find_slow(L, key, slot);
}

/* ---- renewing a registration in place ---------------------------------------
 *
 * A registration that replaces its own record with an unchanged capture (a
 * timer restarted again and again from the same context, or from its own
 * callback: the timer chain) keeps the record and its context object
 * instead of copying the current context into a new one and dropping the
 * old: a copy costs a context and two atomic reference increments, the drop
 * two atomic decrements, about 30 ns together, where a renewal is a few
 * compares. Two cases qualify (uvw__reg_renewable):
 *
 * - Outside the record's callbacks, when its capture was never entered
 *   since it was taken and holds the very map and chain the current context
 *   holds. Both then hold a reference on that map, so neither can have
 *   updated it in place (map.h): same pointers mean the same bindings, and
 *   the capture is the value a fresh copy would have.
 * - Inside its own callback (busy once), when the capture is the context the
 *   callback runs in. The capture is then shared with the running callback
 *   (ctx == retired, one reference for both roles), and is split off lazily
 *   only if the callback writes after restarting: the loop's write hook
 *   (called before every set, reset and mount, and before a task claims an
 *   entered context) copies it first, so later writes never reach it. At
 *   the callback's end (uvw__reg_end) the context becomes the capture for
 *   the next event with a new serial, so tokens minted in this event are
 *   "from another context" there, as with a copy; if anyone else took a
 *   reference on it meanwhile, a copy is made then instead, while it is
 *   still entered here and nobody else can write it.
 *
 * Not covered (a copy is still taken): a restart from another context or
 * task than the record's, a record released or already replaced.
 *
 * Only this thread can write the shared context meanwhile: a task claim
 * from the callback's own thread goes through the hook (split first), and
 * uvw_task_new_in from another thread refuses a context entered here. */
/* The record whose capture is shared with its running callback, or NULL. */
extern __thread uvw__reg_t *uvw__reg_sharing __attribute__((tls_model("initial-exec")));
/* Give the shared capture its own copy before a write (the write hook): 0
 * or UVW_ENOMEM with the detail published. */
int uvw__reg_share_split(void);
/* At the end of the callback that shares its record's capture (ctx still
 * entered): inline when nobody else took a reference, which makes the
 * context the next event's capture; the rest out of line. */
void uvw__reg_share_end_slow(uvw__reg_t *r);
static inline void uvw__reg_share_end(uvw__reg_t *r) {
  uvw_context_t *ctx = r->ctx;
  if (__builtin_expect(r->busy != 1 || r->dead || atomic_load_explicit(&ctx->refs, memory_order_acquire) != 1, 0)) {
    uvw__reg_share_end_slow(r);
    return;
  }
  uvw__reg_sharing = NULL;
  r->retired = NULL;
  uvw__context_renew_serial(ctx); /* its tokens are "from another context" in the next event */
  r->fresh = 1;
}

/* The live record of (key, slot) if it can be renewed in place, else NULL. */
static inline uvw__reg_t *uvw__reg_renewable(uvw__loop_t *L, const void *key, unsigned slot) {
  uvw__reg_t *r = uvw__reg_find(L, key, slot);
  if (r == NULL || r->ctx == NULL || r->dead) return NULL;
  uvw__thread_t *t = &uvw__tstate;
  uvw_context_t *cur = t->current;
  if (r->task != t->task || cur == NULL) return NULL;
  if (r->busy == 0)
    return r->fresh && r->ctx->map == cur->map && r->ctx->chain == cur->chain &&
                   atomic_load_explicit(&r->ctx->refs, memory_order_relaxed) == 1
               ? r
               : NULL;
  /* From its own callback, which runs in the capture. */
  if (r->busy == 1 && cur == r->ctx && (r->retired == NULL || r->retired == r->ctx) &&
      (uvw__reg_sharing == NULL || uvw__reg_sharing == r))
    return r;
  return NULL;
}

/* After libuv accepted the registration: r keeps its capture, with new
 * callbacks. */
static inline void uvw__reg_renew(uvw__reg_t *r, uvw__fn cb, uvw__fn cb2) {
  r->cb = cb;
  r->cb2 = cb2;
  r->extra = NULL;
  if (r->busy) {
    r->retired = r->ctx;
    uvw__reg_sharing = r;
  }
}
/* Stop: release the captured context and task (the record keeps the user's
 * callback, so a raw uv_*_again/start on the handle still reaches it). */
void uvw__reg_stop(uvw__loop_t *L, const void *key, unsigned slot);
/* Completion or close: release the record (deferred while its callback runs). */
void uvw__reg_release(uvw__loop_t *L, uvw__reg_t *r);
void uvw__reg_release_key(uvw__loop_t *L, const void *key, unsigned slot);
/* Free every record of the loop (at uvw_loop_close). */
void uvw__reg_free_all(uvw__loop_t *L);

/* Around a record's callback: the record stays alive until the end even if
 * the callback stops, closes or re-registers its own handle. */
static inline void uvw__reg_begin(uvw__frame_t *f, uvw__loop_t *L, uvw__reg_t *r) {
  r->busy++;
  r->fresh = 0;
  uvw__frame_begin(f, L, r->ctx, r->task);
}
void uvw__reg_end_slow(uvw__loop_t *L, uvw__reg_t *r);
static inline void uvw__reg_end(uvw__frame_t *f, uvw__loop_t *L, uvw__reg_t *r) {
  /* Settled while the callback still has the context entered (see above). */
  if (__builtin_expect(r->retired != NULL && r->retired == r->ctx, 0)) uvw__reg_share_end(r);
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

/* ---- the two halves of every wrapper and trampoline ---------------------- */

/* A wrapper's libuv result, returned unchanged: a failure (rc < 0) also
 * becomes this thread's detail record, naming `wrapper` (a uvw_<x> name),
 * the libuv function (`libuv_fn`, or NULL for uv_<x>), the code's name and
 * libuv's message. */
int uvw__uv_failed(int rc, const char *wrapper, const char *libuv_fn);
/* Publish "the loop is NULL" for `wrapper`; returns UV_EINVAL. */
int uvw__no_loop(const char *wrapper);
/* In a wrapper: `return UVW__UV(uv_x(...));` forwards libuv's result and
 * fills the detail record when it failed. */
#define UVW__UV(rc) uvw__uv_failed((rc), __func__, NULL)

/* Wrapper, before calling libuv: capture for (key, slot). 0 or UV_ENOMEM /
 * UV_EINVAL (loop NULL), with the detail published. */
static inline int uvw__register_in(uv_loop_t *loop, const void *key, unsigned slot, uvw__fn cb, uvw__fn cb2,
                                   uvw__loop_t **L, uvw__reg_t **r, const char *wrapper) {
  *L = NULL;
  *r = NULL;
  if (loop == NULL) return uvw__no_loop(wrapper);
  *L = uvw__loop_get(loop);
  if (*L == NULL) return UV_ENOMEM; /* the detail is published */
  *r = uvw__reg_prepare(*L, key, slot, cb, cb2);
  return *r ? 0 : UV_ENOMEM;
}
#define uvw__register(loop, key, slot, cb, cb2, L, r) uvw__register_in(loop, key, slot, cb, cb2, L, r, __func__)

/* Wrapper, after calling libuv: keep the capture only if libuv accepted. */
static inline int uvw__registered_in(uvw__loop_t *L, uvw__reg_t *r, int rc, const char *wrapper) {
  if (rc == 0) {
    uvw__reg_commit(L, r);
    return 0;
  }
  uvw__reg_discard(L, r);
  return uvw__uv_failed(rc, wrapper, NULL);
}
#define uvw__registered(L, r, rc) uvw__registered_in(L, r, rc, __func__)

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

/* Read UVWOOL_DEBUG once (debug.c). */
void uvw__debug_env(void);
/* Prepare the close record of a handle (handle.c): 1 when the close
 * trampoline is to be installed, with *r to commit once libuv accepted. */
int uvw__close_prepare(uv_handle_t *handle, uv_close_cb close_cb, uvw__loop_t **L, uvw__reg_t **r);
/* At an accepted close: release the captures of a handle's records, keeping
 * the records (and the user's callbacks) until the close callback. */
void uvw__handle_stop(uv_handle_t *handle);
/* Release every record of a handle (its close callback ran). */
void uvw__handle_release(uv_handle_t *handle);
/* The alloc callback's trampoline for reads and udp receives (slot MAIN,
 * the record's cb2). */
void uvw__alloc_trampoline(uv_handle_t *handle, size_t suggested_size, uv_buf_t *buf);
/* The close callback's trampoline (slot CLOSE, one-shot), for every close. */
void uvw__close_trampoline(uv_handle_t *handle);

#endif
