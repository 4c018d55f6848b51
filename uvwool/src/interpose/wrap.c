/* Link-time mode: with -Wl,--wrap=uv_<name> for every row of the wrapper
 * table, the target's own references to uv_<name> become references to
 * __wrap_uv_<name>, defined here as a call to uvw_<name>.
 *
 * Only the objects of that link are rewritten: libuvwool.so, linked on its
 * own, keeps calling the real libuv, so there is no recursion. This is why
 * link-time mode requires the shared uvwool: wrapping a link that contains
 * the static archive would rewrite uvwool's own calls too (uvwool_transparent
 * refuses it). */
#include "signatures.h"
#include "uvwool/loop.h"
#include "wrappers.def"
#include "extras.def"

#define UVWI_WRAP_INT(name, params, args) \
  int __wrap_uv_##name params;            \
  int __wrap_uv_##name params { return uvw_##name args; }
#define UVWI_WRAP_VOID(name, params, args) \
  void __wrap_uv_##name params;            \
  void __wrap_uv_##name params { uvw_##name args; }
#define UVWI_WRAP(ret, name, params, args) UVWI_WRAP_##ret(name, params, args)

#define UVW_WRAPPER(family, name, kind) UVWI_SIG_##name(UVWI_WRAP)
#define UVWI_EXTRA(name) UVWI_SIG_##name(UVWI_WRAP)
UVW_WRAPPER_LIST
UVWI_EXTRA_LIST
