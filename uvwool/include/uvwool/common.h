/* uvwool: version and memory hooks shared by every layer. */
#ifndef UVWOOL_COMMON_H
#define UVWOOL_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UVWOOL_VERSION_MAJOR 0
#define UVWOOL_VERSION_MINOR 1
#define UVWOOL_VERSION_PATCH 0
#define UVWOOL_VERSION_STRING "0.1.0"

const char *uvw_version_string(void);

typedef void *(*uvw_malloc_cb)(size_t size);
typedef void *(*uvw_realloc_cb)(void *ptr, size_t size);
typedef void *(*uvw_calloc_cb)(size_t count, size_t size);
typedef void (*uvw_free_cb)(void *ptr);

/* Replace the allocator uvwool uses, as uv_replace_allocator does. Call it
 * before any other uvwool call (memory allocated before must be freed by the
 * same free), or with functions that are compatible with the current ones.
 * Returns 0, or UVW_EINVAL when a function is NULL. */
int uvw_replace_allocator(uvw_malloc_cb malloc_func, uvw_realloc_cb realloc_func,
                          uvw_calloc_cb calloc_func, uvw_free_cb free_func);

/* Frees memory uvwool handed to the caller (serialized text, ids). */
void uvw_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
