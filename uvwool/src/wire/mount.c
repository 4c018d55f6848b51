/* Mount: the only place wire state enters a context (docs/semantics.md §7).
 *
 * Everything is prepared on private copies (a new map sharing structure
 * with the live one, a new chain record) and published with two pointer
 * stores at the end, so any failure leaves the context exactly as it was. */
#include <string.h>

#include "alloc.h"
#include "context.h"
#include "error.h"
#include "var.h"
#include "wire_int.h"

/* Whether mounting m into ctx would leave it as it is: owned as a mount
 * stamps it, every entry's value already bound (uvw__value_same), every
 * reset already pending, every stub already pinned. The merge of an answer
 * whose routine changed nothing is such a mount; skipping it keeps the
 * context's map, and with it the map's encoding (manifest_encode.c). */
static int changes_nothing(const uvw_context_t *ctx, const uvw_manifest_t *m, const uvw__thread_t *t) {
  const uvw__chain_t *c = ctx->chain;
  if (c == NULL || c->owner_gen != t->gen || c->owner_task != t->task) return 0;
  for (size_t i = 0; i < m->n; i++) {
    uvw_var_t *var = m->entries[i].var;
    uvw_value_t *bound = uvw__map_get(ctx->map, var);
    if (m->entries[i].value != NULL ? !uvw__value_same(bound, m->entries[i].value)
                                    : bound != NULL || !uvw__chain_has_reset(c, var))
      return 0;
    if (atomic_load(&var->is_stub) && !uvw__chain_has_stub(c, var)) return 0;
  }
  return 1;
}

int uvw_manifest_mount(const uvw_manifest_t *m) {
  if (m == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_manifest_mount: manifest is NULL");
    return UVW_EINVAL;
  }
  uvw_context_t *ctx = uvw__context_current();
  if (ctx == NULL) return UVW_ENOMEM;
  uvw__thread_t *t = &uvw__tstate;
  int rc = uvw__guard_op(ctx->chain, t, "mount", NULL);
  if (rc != 0) return rc;
  /* Inside a loop callback: install the task factory on arming, report its
   * displacement (docs/semantics.md §6), as set and reset do. */
  if (t->write_hook && (rc = t->write_hook(t->write_hook_arg, ctx->chain == NULL && m->n > 0)) != 0) return rc;
  /* Nothing to carry: an unarmed receiver stays unarmed (and pays nothing). */
  if (ctx->chain == NULL && m->n == 0) return 0;
  if (changes_nothing(ctx, m, t)) return 0;

  uvw__chain_t *next;
  if (ctx->chain == NULL) {
    /* Fresh: the manifest's id (an unarmed receiver adopts the sender's),
     * or the fresh one chain_new minted when the manifest has none. */
    next = uvw__chain_new(t->gen, t->task);
    if (next != NULL && m->has_id) memcpy(next->id, m->id, sizeof(next->id));
  } else {
    /* Merge: the receiver keeps its id; the mount re-stamps the owner as a
     * set does. */
    next = uvw__chain_clone(ctx->chain);
    if (next != NULL) uvw__chain_set_owner(next, t->gen, t->task);
  }
  if (next == NULL) return uvw__error_nomem("chain");

  /* A fresh context takes the manifest's own map when it has one (the
   * same bindings, already built and perhaps already encoded). */
  int whole = ctx->map == NULL && ctx->chain == NULL && m->map != NULL;
  uvw__map_t *map = uvw__map_ref(whole ? m->map : ctx->map);
  for (size_t i = 0; rc == 0 && i < m->n; i++) {
    uvw_var_t *var = m->entries[i].var;
    uvw_value_t *value = m->entries[i].value;
    if (whole) {
      /* the map binds it already; only a stub needs its pin below */
    } else if (value != NULL) {
      rc = uvw__map_set(&map, var, value);
      uvw__chain_remove_reset(next, var); /* bound and pending never overlap */
    } else {
      rc = uvw__map_remove(&map, var);
      if (rc == 0) rc = uvw__chain_add_reset(next, var);
    }
    /* A stub the chain carries stays known to it, so a fork keeps it. */
    if (rc == 0 && atomic_load(&var->is_stub)) rc = uvw__chain_pin_stub(next, var);
  }
  if (rc != 0) {
    uvw__map_unref(map);
    uvw__chain_unref(next);
    return uvw__error_nomem("mount");
  }
  /* Foreign readers may be copying ctx: publish inside a write section. */
  uvw__context_write_begin(ctx);
  uvw__map_t *old_map = ctx->map;
  uvw__chain_t *old_chain = ctx->chain;
  ctx->map = map;
  ctx->chain = next;
  uvw__context_write_end(ctx);
  uvw__map_unref(old_map);
  uvw__chain_unref(old_chain);
  return 0;
}
