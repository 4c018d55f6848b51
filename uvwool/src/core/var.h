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
  struct uvw_var_s *next; /* registry bucket chain */
};

/* The variable for (ns, name), creating a stub if the key is unknown. Stubs
 * stand for variables a peer knows and this process has not declared yet.
 * Returns 0 and the (stub or declared) variable, or UVW_EINVAL/UVW_ENOMEM.
 * The wire layer caps how many stubs one manifest may create. */
int uvw__var_stub(const char *ns, const char *name, uvw_var_t **out);
/* Number of stubs currently in the registry. */
size_t uvw__var_stub_count(void);
/* Non-zero once any variable was given a policy without UVW_PROPAGATE_FORK or
 * UVW_PROPAGATE_THREAD, so forks can skip filtering in the common case. */
int uvw__var_any_restricted(void);

#endif
