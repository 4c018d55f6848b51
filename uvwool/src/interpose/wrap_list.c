/* Not compiled: preprocessed at configure time (cc -E -P) into the list of
 * functions link-time mode wraps, straight from the wrapper table. */
#include "wrappers.def"
#include "extras.def"
#define UVW_WRAPPER(family, name, kind) uvwool_wrap uv_##name
#define UVWI_EXTRA(name) uvwool_wrap uv_##name
UVW_WRAPPER_LIST
UVWI_EXTRA_LIST
