#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "uvwool/common.h"
#include "uvwool/errors.h"

/* Plain globals, like libuv's uv__allocator: replaced only before use. */
static struct {
  uvw_malloc_cb local_malloc;
  uvw_realloc_cb local_realloc;
  uvw_calloc_cb local_calloc;
  uvw_free_cb local_free;
} uvw__allocator = {malloc, realloc, calloc, free};

const char *uvw_version_string(void) { return UVWOOL_VERSION_STRING; }

int uvw_replace_allocator(uvw_malloc_cb malloc_func, uvw_realloc_cb realloc_func,
                          uvw_calloc_cb calloc_func, uvw_free_cb free_func) {
  if (malloc_func == NULL || realloc_func == NULL || calloc_func == NULL || free_func == NULL)
    return UVW_EINVAL;
  uvw__allocator.local_malloc = malloc_func;
  uvw__allocator.local_realloc = realloc_func;
  uvw__allocator.local_calloc = calloc_func;
  uvw__allocator.local_free = free_func;
  return 0;
}

void *uvw__malloc(size_t size) { return size ? uvw__allocator.local_malloc(size) : NULL; }
void *uvw__calloc(size_t count, size_t size) { return uvw__allocator.local_calloc(count, size); }
void *uvw__realloc(void *ptr, size_t size) { return uvw__allocator.local_realloc(ptr, size); }
void uvw__free(void *ptr) {
  if (ptr != NULL) uvw__allocator.local_free(ptr);
}
void uvw_free(void *ptr) { uvw__free(ptr); }

char *uvw__strndup(const char *s, size_t len) {
  char *p = uvw__malloc(len + 1);
  if (p == NULL) return NULL;
  if (len) memcpy(p, s, len);
  p[len] = '\0';
  return p;
}
