/* Internal allocation entry points: every uvwool allocation goes through the
 * replaceable allocator so tests can inject failures. */
#ifndef UVW_CORE_ALLOC_H
#define UVW_CORE_ALLOC_H

#include <stddef.h>

void *uvw__malloc(size_t size);
void *uvw__calloc(size_t count, size_t size);
void *uvw__realloc(void *ptr, size_t size);
void uvw__free(void *ptr);
/* NUL-terminated copy of s[0..len), or NULL. */
char *uvw__strndup(const char *s, size_t len);

#endif
