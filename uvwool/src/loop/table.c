/* The wrapper table, built from wrappers.def: the one list behind the
 * explicit API, the docs and the transparent modes. */
#include "loop_internal.h"
#include "wrappers.def"

#define UVW__KIND(k) UVW_WRAPPER_##k
#define UVW_WRAPPER(family, name, kind) \
  {#family, "uv_" #name, "uvw_" #name, UVW__KIND(kind), (void (*)(void))uvw_##name, (void (*)(void))uv_##name},

static const uvw_wrapper_t table[] = {UVW_WRAPPER_LIST};

#undef UVW_WRAPPER

const uvw_wrapper_t *uvw_wrapper_table(size_t *count) {
  if (count) *count = sizeof(table) / sizeof(table[0]);
  return table;
}
