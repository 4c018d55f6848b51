/* Context variables and the process-wide registry keyed by (namespace, name). */
#ifndef UVW_CORE_VAR_H
#define UVW_CORE_VAR_H

#include <stdatomic.h>
#include <stddef.h>

#include "value.h"
#include "uvwool/context.h"

struct uvw_var_s {
  char *ns;
  char *name;
  /* Stubs have no default; a declaration taking a stub over publishes its
   * default once (release store, acquire load), so readers never see a
   * value being freed. */
  _Atomic(uvw_value_t *) default_value;
  atomic_int is_stub;
  atomic_uint policy;
  /* Who declared it, for ContextVarCollision reports: the declaring call's
   * return address (under the registry lock) and whether a stub made from
   * wire data held the key first. */
  const void *declared_at;
  int was_stub;
  /* A stub lives while something holds it (a chain pins it, a decoded
   * manifest names it) and is freed with the last hold, so a peer's keys
   * cost memory only while some context carries them. `kept` stubs were
   * handed out by uvw_var_find and live for the process (a borrowed pointer
   * must not dangle). Both under the registry lock. */
  size_t holds;
  int kept;
  struct uvw_var_s *next; /* registry bucket chain */
};

/* The variable for (ns, name), creating a stub if the key is unknown. Stubs
 * stand for variables a peer knows and this process has not declared yet.
 * Returns 0 and the (stub or declared) variable, or UVW_EINVAL/UVW_ENOMEM.
 * A stub comes with one hold the caller drops with uvw__var_release. */
int uvw__var_stub(const char *ns, const char *name, uvw_var_t **out);
/* The wire's lookup: the declared variable (no hold), an existing stub (one
 * more hold), or, when may_create, a new stub with one hold (*created = 1).
 * Returns 0, 1 when the key is unknown and !may_create (*out NULL), or
 * UVW_EINVAL/UVW_ENOMEM. */
int uvw__var_acquire(const char *ns, const char *name, int may_create, uvw_var_t **out, int *created);
/* Drop one hold on each stub of vars (declared ones are ignored); a stub
 * nothing holds any more leaves the registry and is freed. One lock for
 * the whole array; n == 0 costs nothing. */
void uvw__var_release(uvw_var_t *const *vars, size_t n);
/* One more hold on each stub of vars (a chain copied its pinned stubs). */
void uvw__var_hold(uvw_var_t *const *vars, size_t n);
/* Like uvw_var_find but never keeps a stub (introspection). */
uvw_var_t *uvw__var_lookup(const char *ns, const char *name);
/* Number of stubs currently in the registry. */
size_t uvw__var_stub_count(void);
/* Non-zero once any variable was given a policy without UVW_PROPAGATE_FORK or
 * UVW_PROPAGATE_THREAD, so forks can skip filtering in the common case.
 * Inline: every fork asks. */
extern atomic_int uvw__var_restricted_seen;
/* Counts uvw_var_set_policy calls: what a variable's policy decides (which
 * bindings a manifest carries) may be cached under this number. */
extern atomic_uint_fast64_t uvw__var_policy_changes;
static inline int uvw__var_any_restricted(void) {
  return atomic_load_explicit(&uvw__var_restricted_seen, memory_order_relaxed);
}

#endif
