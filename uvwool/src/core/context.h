/* Internal layout of contexts and the guard, shared by context.c and access.c
 * and by the layers above (the loop layer enters captured contexts around
 * callbacks, the wire layer mounts into them). */
#ifndef UVW_CORE_CONTEXT_H
#define UVW_CORE_CONTEXT_H

#include <stdatomic.h>
#include <stdint.h>

#include "chain.h"
#include "map.h"
#include "thread.h"
#include "uvwool/context.h"

/* entered_by of a context a suspended task holds entered (no generation is
 * ever this value: they count up from 1). */
#define UVW__ENTERED_HELD UINT64_MAX

struct uvw_context_s {
  atomic_uint refs;
  /* Who has it entered, in one word so enter is one compare-and-swap and
   * exit one store: 0 nobody; the generation of the thread it is current on
   * (a thread's base: always its own); UVW__ENTERED_HELD while it stays
   * entered inside a suspended task (task.c), current on no thread. Read by
   * foreign readers to tell "mine" from "foreign" and by the UVW_EENTERED
   * report. */
  _Atomic uint64_t entered_by;
  atomic_uint readers;  /* foreign readers inside their section (see below) */
  atomic_int writing;   /* the entering thread is replacing map or chain */
  uvw__map_t *map;      /* NULL: no bindings */
  uvw__chain_t *chain;  /* NULL: unarmed */
  uvw_context_t *prev;  /* what was current before enter (borrowed) */
  uint64_t serial;      /* process-unique identity for token checks */
};

/* A new process-unique identity for ctx, without a shared counter: the
 * thread's never-reused generation in the high bits, a per-thread count in
 * the low 40. Tokens minted under the old one are then "from another
 * context" (a registration renewing its capture in place, loop layer). */
static inline void uvw__context_renew_serial(uvw_context_t *ctx) {
  uvw__thread_t *t = &uvw__tstate;
  ctx->serial = (t->gen << 40) | (++t->context_serial & ((1ULL << 40) - 1));
}

/* UVW_EENTERED naming who has ctx entered (detail published). */
int uvw__context_entered_error(const uvw_context_t *ctx);

/* The current context, materialising the thread's base context on first use.
 * NULL only on allocation failure (detail published). */
uvw_context_t *uvw__context_current(void);

/* Enter a context the caller owns privately (a registration's capture): the
 * "entered by" word is checked and set without a compare-and-swap,
 * which is exact as long as no other thread can reach ctx meanwhile, true
 * for a capture until its callback hands it out. Falls back to the full
 * enter for a fork that must be claimed. */
static inline int uvw__context_enter_owned(uvw_context_t *ctx) {
  uvw__thread_t *t = uvw__thread();
  if (__builtin_expect(atomic_load_explicit(&ctx->entered_by, memory_order_relaxed) != 0 ||
                           (ctx->chain != NULL && ctx->chain->owner_gen == 0),
                       0))
    return uvw_context_enter(ctx);
  atomic_store_explicit(&ctx->entered_by, t->gen, memory_order_relaxed);
  ctx->prev = t->current;
  t->current = ctx;
  return 0;
}

/* ---- foreign readers ---------------------------------------------------------
 *
 * Only the thread that has a context entered writes its map and chain
 * pointers, and it updates a map it holds alone in place (map.h). Any other
 * thread may copy, look up or measure the context meanwhile (as CPython
 * allows ctx.copy(), ctx.get() and len(ctx) from any thread). The danger is
 * the window between a foreign reader loading ctx->map and taking its
 * reference: the writer may update that map in place or free it (and the
 * values or chain it drops) inside the window.
 *
 * The two sides close the window with a Dekker handshake on the context:
 * the writer raises `writing`, then checks `readers` and waits for it to
 * drain; a foreign reader raises `readers`, then checks `writing` and backs
 * off while it is set. Either the reader sees the write in progress, or the
 * writer sees the reader, never neither. Once the reader holds its
 * reference the map is shared, so the writer copies instead of updating in
 * place: a copy is a consistent snapshot for as long as it lives.
 *
 * Cost: the owner's side is two plain stores and a load per write, with no
 * read-modify-write. The store-then-load order needs a full barrier on one
 * side: with membarrier(2) registered the foreign reader pays it as a
 * syscall that makes every running thread execute one, and the writer needs
 * only a compiler barrier (the asymmetric pattern of liburcu and folly);
 * without it (old kernels, seccomp, ThreadSanitizer builds) the writer
 * issues a seq_cst fence. A reader of a context entered nowhere (a
 * capture, a parent kept for forking) skips the kernel barrier: no write is
 * in progress, and a thread that enters meanwhile does so with a
 * compare-and-swap, itself a full barrier, so its first write sees the
 * reader. That holds for every context another thread can reach (contexts
 * of runtime tasks included: uvw_task_enter uses the checked enter);
 * uvw__context_enter_owned's plain store is only for a capture no other
 * thread can see before its callback runs. Reads on the entering thread itself (every uvw_get, and copies of
 * the own current context) skip all of this.
 *
 * Lifetime of what the writer drops (the old map, replaced values, the old
 * chain): it frees them inside its section, when no foreign reader can be
 * between loading a pointer and taking its reference, or after publishing
 * the new pointers, when no reader can load the old ones any more. */
void uvw__context_wait_readers(uvw_context_t *ctx);

static inline void uvw__context_write_begin(uvw_context_t *ctx) {
#ifdef UVW__TSAN
  atomic_store_explicit(&ctx->writing, 1, memory_order_seq_cst);
#else
  atomic_store_explicit(&ctx->writing, 1, memory_order_relaxed);
  if (uvw__membarrier_ok) atomic_signal_fence(memory_order_seq_cst);
  else atomic_thread_fence(memory_order_seq_cst);
#endif
  if (__builtin_expect(atomic_load_explicit(&ctx->readers, memory_order_seq_cst) != 0, 0))
    uvw__context_wait_readers(ctx);
}

/* The write section for a writer that has not entered ctx (stamping an
 * explicitly given context for a task): it cannot rely on enter's
 * compare-and-swap, so it always pays the fence. Rare by nature. */
static inline void uvw__context_write_begin_unentered(uvw_context_t *ctx) {
  atomic_store_explicit(&ctx->writing, 1, memory_order_seq_cst); /* seq_cst store, then load: no reordering */
  if (atomic_load_explicit(&ctx->readers, memory_order_seq_cst) != 0) uvw__context_wait_readers(ctx);
}

static inline void uvw__context_write_end(uvw_context_t *ctx) {
  atomic_store_explicit(&ctx->writing, 0, memory_order_release);
}

/* A reader section: returns 0 when the calling thread has ctx entered (no
 * handshake needed, it is the only writer), 1 after entering the foreign
 * section, which uvw__context_read_end(ctx, 1) leaves. Inside, ctx->map and
 * ctx->chain stay put and alive: take references, do not allocate. */
int uvw__context_read_begin(const uvw_context_t *ctx);
void uvw__context_read_end(const uvw_context_t *ctx, int foreign);
/* New references to ctx's map and chain (either may be NULL), read in a
 * reader section: one consistent state, safe from any thread. */
void uvw__context_snapshot(const uvw_context_t *ctx, uvw__map_t **map, uvw__chain_t **chain);

/* Take ctx, the thread's current context and not its base, off the stack. */
static inline void uvw__context_pop(uvw__thread_t *t, uvw_context_t *ctx) {
  t->current = ctx->prev;
  atomic_store_explicit(&ctx->entered_by, 0, memory_order_release);
}

/* Exit ctx after unwinding contexts a callee left entered above it: inline
 * when ctx is still current (a well-behaved callee), the rest out of line. */
int uvw__context_leave_unwinding(uvw_context_t *ctx);
static inline int uvw__context_leave(uvw_context_t *ctx) {
  uvw__thread_t *t = &uvw__tstate;
  if (__builtin_expect(ctx != NULL && ctx == t->current && ctx != t->base, 1)) {
    uvw__context_pop(t, ctx);
    return 0;
  }
  return uvw__context_leave_unwinding(ctx);
}

/* The guard against chain `c` of the current context, run by operation `op`
 * ("get", "set", "reset", "mount", ...) on `var` (NULL when the operation
 * concerns no single variable). Returns 0 or UVW_ECONTENTION with the
 * detail published. */
int uvw__guard_fail_op(const uvw__chain_t *c, uvw__thread_t *t, const char *kind, const char *op,
                       const uvw_var_t *var);
int uvw__guard_fail(const uvw__chain_t *c, uvw__thread_t *t, const char *kind);

static inline int uvw__guard_op(const uvw__chain_t *c, uvw__thread_t *t, const char *op, const uvw_var_t *var) {
  if (c == NULL) return 0;
  if (__builtin_expect(c->owner_gen != t->gen && c->owner_gen != 0, 0))
    return uvw__guard_fail_op(c, t, "thread", op, var);
  const uvw__task_t *owner = c->owner_task;
  if (__builtin_expect(owner != NULL && t->task != NULL && t->task != owner, 0) && !uvw__task_finished(owner))
    return uvw__guard_fail_op(c, t, "task", op, var);
  return 0;
}

/* Build and publish a ChainContention for chain c, owner vs the offender. */
int uvw__contention(const uvw__chain_t *c, const char *kind, uint64_t offending_gen, const uvw__task_t *offending_task);

#endif
