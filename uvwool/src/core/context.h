/* Internal layout of contexts and the guard, shared by context.c and access.c
 * (and later by the libuv layer, which enters captured contexts around
 * callbacks). */
#ifndef UVW_CORE_CONTEXT_H
#define UVW_CORE_CONTEXT_H

#include <stdatomic.h>
#include <stdint.h>

#include "chain.h"
#include "map.h"
#include "thread.h"
#include "uvwool/context.h"

struct uvw_context_s {
  atomic_uint refs;
  atomic_int entered;   /* 1 while current on some thread (a thread's base: always) */
  uvw__map_t *map;      /* NULL: no bindings */
  uvw__chain_t *chain;  /* NULL: unarmed */
  uvw_context_t *prev;  /* what was current before enter (borrowed) */
  uint64_t serial;      /* process-unique identity for token checks */
};

/* The current context, materialising the thread's base context on first use.
 * NULL only on allocation failure (detail published). */
uvw_context_t *uvw__context_current(void);

/* Enter a context the caller owns privately (a registration's capture): the
 * "entered anywhere" flag is checked and set without a compare-and-swap,
 * which is exact as long as no other thread can reach ctx meanwhile, true
 * for a capture until its callback hands it out. Falls back to the full
 * enter for a fork that must be claimed. */
static inline int uvw__context_enter_owned(uvw_context_t *ctx) {
  uvw__thread_t *t = uvw__thread();
  if (__builtin_expect(atomic_load_explicit(&ctx->entered, memory_order_relaxed) != 0 ||
                           (ctx->chain != NULL && ctx->chain->owner_gen == 0),
                       0))
    return uvw_context_enter(ctx);
  atomic_store_explicit(&ctx->entered, 1, memory_order_relaxed);
  ctx->prev = t->current;
  t->current = ctx;
  return 0;
}

/* Exit ctx after unwinding contexts a callee left entered above it. */
int uvw__context_leave(uvw_context_t *ctx);

/* The guard (docs/semantics.md §4) against chain `c` of the current context. Returns 0
 * or UVW_ECONTENTION with the detail published. */
int uvw__guard_fail(const uvw__chain_t *c, uvw__thread_t *t, const char *kind);

static inline int uvw__guard(const uvw__chain_t *c, uvw__thread_t *t) {
  if (c == NULL) return 0;
  if (__builtin_expect(c->owner_gen != t->gen && c->owner_gen != 0, 0)) return uvw__guard_fail(c, t, "thread");
  const uvw__task_t *owner = c->owner_task;
  if (__builtin_expect(owner != NULL && t->task != NULL && t->task != owner, 0) && !uvw__task_finished(owner))
    return uvw__guard_fail(c, t, "task");
  return 0;
}

/* Build and publish a ChainContention for chain c, owner vs the offender. */
int uvw__contention(const uvw__chain_t *c, const char *kind, uint64_t offending_gen, const uvw__task_t *offending_task);

#endif
