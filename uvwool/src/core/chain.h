/* The chain: the one immutable record an armed context carries.
 *
 * Immutable so that a context copy can share it for free and a "change" is
 * the installation of a modified copy (docs/testing.md row 9: equality by
 * identity). Changes are rare (arming, an owner re-stamp, a reset to no
 * value, a mount), so copying the small arrays costs nothing that counts. */
#ifndef UVW_CORE_CHAIN_H
#define UVW_CORE_CHAIN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "task.h"
#include "uvwool/context.h"

typedef struct uvw__chain_s {
  atomic_uint refs;
  uint8_t id[16];
  uint64_t owner_gen;         /* owner thread generation; 0 = not claimed yet (a fresh fork) */
  int owner_os_tid;           /* the owner's OS thread id, for error reports only */
  uvw__task_t *owner_task;    /* reference held; NULL = no owner task */
  size_t nresets;             /* pending resets, keyed by variable identity, */
  uvw_var_t **resets;         /* i.e. (namespace, name): stubs stand for undeclared keys */
  size_t nstubs;              /* pinned stubs: undeclared variables this chain carries */
  uvw_var_t **stubs;
} uvw__chain_t;

/* A fresh chain: new random id, owned by this thread and `task`. New
 * reference or NULL on allocation failure. */
uvw__chain_t *uvw__chain_new(uint64_t owner_gen, uvw__task_t *task);
/* A private, modifiable copy of c (same id). New reference or NULL. */
uvw__chain_t *uvw__chain_clone(const uvw__chain_t *c);
/* A fork of c: new id, no owner, no pending resets, the same stubs. */
uvw__chain_t *uvw__chain_fork(const uvw__chain_t *c);
/* NULL-safe; inline because every context copy and capture takes one. */
void uvw__chain_destroy(uvw__chain_t *c);
static inline uvw__chain_t *uvw__chain_ref(uvw__chain_t *c) {
  if (c) atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}
static inline void uvw__chain_unref(uvw__chain_t *c) {
  if (c != NULL && atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) uvw__chain_destroy(c);
}

/* Mutators for a private copy only (never on a published chain). */
void uvw__chain_set_owner(uvw__chain_t *c, uint64_t owner_gen, uvw__task_t *task);
int uvw__chain_add_reset(uvw__chain_t *c, uvw_var_t *var);    /* 0 or UVW_ENOMEM */
void uvw__chain_remove_reset(uvw__chain_t *c, const uvw_var_t *var);
int uvw__chain_pin_stub(uvw__chain_t *c, uvw_var_t *stub);     /* 0 or UVW_ENOMEM */

int uvw__chain_has_reset(const uvw__chain_t *c, const uvw_var_t *var);
int uvw__chain_has_stub(const uvw__chain_t *c, const uvw_var_t *var);
/* 32 lowercase hex digits + NUL. */
void uvw__chain_id_hex(const uvw__chain_t *c, char out[33]);

#endif
