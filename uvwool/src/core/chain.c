#include "chain.h"

#include <string.h>

#include "alloc.h"
#include "thread.h"
#include "var.h"
#include "uvwool/errors.h"

/* Owners are stamped by the thread that runs the chain, so its cached OS id
 * is the owner's; a stamp for another generation keeps no id. */
static int os_tid_of(uint64_t gen) { return gen != 0 && gen == uvw__tstate.gen ? uvw__tstate.os_tid : 0; }

/* From the thread's cache of freed chains (freelist.h) when it has one. */
static uvw__chain_t *chain_alloc(void) {
  uvw__chain_t *c = uvw__freelist_pop(&uvw__tstate.free_chains);
  if (c != NULL) memset(c, 0, sizeof(*c));
  else if ((c = uvw__calloc(1, sizeof(*c))) == NULL) return NULL;
  atomic_init(&c->refs, 1);
  return c;
}

uvw__chain_t *uvw__chain_new(uint64_t owner_gen, uvw__task_t *task) {
  uvw__chain_t *c = chain_alloc();
  if (c == NULL) return NULL;
  uvw__thread_random128(c->id);
  c->owner_gen = owner_gen;
  c->owner_os_tid = os_tid_of(owner_gen);
  c->owner_task = uvw__task_ref(task);
  return c;
}

static int copy_vars(uvw_var_t ***dst, size_t *ndst, uvw_var_t *const *src, size_t n) {
  *ndst = 0;
  *dst = NULL;
  if (n == 0) return 0;
  *dst = uvw__malloc(n * sizeof(**dst));
  if (*dst == NULL) return UVW_ENOMEM;
  memcpy(*dst, src, n * sizeof(**dst));
  *ndst = n;
  return 0;
}

uvw__chain_t *uvw__chain_clone(const uvw__chain_t *src) {
  uvw__chain_t *c = chain_alloc();
  if (c == NULL) return NULL;
  memcpy(c->id, src->id, sizeof(c->id));
  c->owner_gen = src->owner_gen;
  c->owner_os_tid = src->owner_os_tid;
  if (copy_vars(&c->resets, &c->nresets, src->resets, src->nresets) != 0 ||
      copy_vars(&c->stubs, &c->nstubs, src->stubs, src->nstubs) != 0) {
    uvw__chain_unref(c);
    return NULL;
  }
  if (c->nstubs) uvw__var_hold(c->stubs, c->nstubs); /* every chain holds the stubs it pins */
  c->owner_task = uvw__task_ref(src->owner_task);
  return c;
}

uvw__chain_t *uvw__chain_fork(const uvw__chain_t *src) {
  uvw__chain_t *c = uvw__chain_new(0, NULL);
  if (c && copy_vars(&c->stubs, &c->nstubs, src->stubs, src->nstubs) != 0) {
    uvw__chain_unref(c);
    return NULL;
  }
  if (c && c->nstubs) uvw__var_hold(c->stubs, c->nstubs);
  return c;
}

void uvw__chain_destroy(uvw__chain_t *c) {
  if (c->owner_task) uvw__task_unref(c->owner_task);
  if (c->resets) uvw__free(c->resets);
  if (c->stubs) {
    uvw__var_release(c->stubs, c->nstubs);
    uvw__free(c->stubs);
  }
  uvw__freelist_push(&uvw__tstate.free_chains, c, uvw__tstate.gen != 0);
}

void uvw__chain_set_owner(uvw__chain_t *c, uint64_t owner_gen, uvw__task_t *task) {
  if (owner_gen != c->owner_gen) c->owner_os_tid = os_tid_of(owner_gen);
  c->owner_gen = owner_gen;
  if (c->owner_task != task) {
    uvw__task_unref(c->owner_task);
    c->owner_task = uvw__task_ref(task);
  }
}

static ptrdiff_t index_of(uvw_var_t *const *vars, size_t n, const uvw_var_t *var) {
  for (size_t i = 0; i < n; i++)
    if (vars[i] == var) return (ptrdiff_t)i;
  return -1;
}

static int add_var(uvw_var_t ***vars, size_t *n, uvw_var_t *var) {
  if (index_of(*vars, *n, var) >= 0) return 0;
  uvw_var_t **grown = uvw__realloc(*vars, (*n + 1) * sizeof(*grown));
  if (grown == NULL) return UVW_ENOMEM;
  grown[(*n)++] = var;
  *vars = grown;
  return 0;
}

int uvw__chain_add_reset(uvw__chain_t *c, uvw_var_t *var) { return add_var(&c->resets, &c->nresets, var); }

void uvw__chain_remove_reset(uvw__chain_t *c, const uvw_var_t *var) {
  ptrdiff_t i = index_of(c->resets, c->nresets, var);
  if (i < 0) return;
  c->resets[i] = c->resets[--c->nresets]; /* order carries no meaning */
}

int uvw__chain_pin_stub(uvw__chain_t *c, uvw_var_t *stub) {
  size_t before = c->nstubs;
  int rc = add_var(&c->stubs, &c->nstubs, stub);
  if (rc == 0 && c->nstubs > before) uvw__var_hold(&stub, 1);
  return rc;
}

int uvw__chain_has_reset(const uvw__chain_t *c, const uvw_var_t *var) {
  return index_of(c->resets, c->nresets, var) >= 0;
}

int uvw__chain_has_stub(const uvw__chain_t *c, const uvw_var_t *var) {
  return index_of(c->stubs, c->nstubs, var) >= 0;
}

void uvw__chain_id_hex(const uvw__chain_t *c, char out[33]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hex[c->id[i] >> 4];
    out[2 * i + 1] = hex[c->id[i] & 15];
  }
  out[32] = '\0';
}
