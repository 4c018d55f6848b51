/* A thread's cache of freed objects of one kind (contexts, chains, tokens):
 * the hot paths that make and drop them (a capture per libuv registration,
 * a fork per task, a token per set) then allocate nothing once warm.
 *
 * The link lives in the first bytes of a freed object, so any object of at
 * least a pointer's size can be cached. A cache is bounded (a burst of
 * frees beyond it goes back to the allocator) and drained at thread exit;
 * an object freed on another thread than the one that made it simply joins
 * that thread's cache. */
#ifndef UVW_CORE_FREELIST_H
#define UVW_CORE_FREELIST_H

#include <string.h>

#include "alloc.h"

#define UVW__FREELIST_MAX 64

typedef struct {
  void *head;
  unsigned len;
} uvw__freelist_t;

/* A cached object (its bytes are garbage) or NULL when the cache is empty. */
static inline void *uvw__freelist_pop(uvw__freelist_t *fl) {
  void *p = fl->head;
  if (p != NULL) {
    memcpy(&fl->head, p, sizeof(void *));
    fl->len--;
  }
  return p;
}

/* Keep p for reuse, or free it when the cache is full or the thread is
 * past its exit cleanup (`alive` 0: nothing would drain the cache again). */
static inline void uvw__freelist_push(uvw__freelist_t *fl, void *p, int alive) {
  if (alive && fl->len < UVW__FREELIST_MAX) {
    memcpy(p, &fl->head, sizeof(void *));
    fl->head = p;
    fl->len++;
  } else {
    uvw__free(p);
  }
}

static inline void uvw__freelist_drain(uvw__freelist_t *fl) {
  void *p;
  while ((p = uvw__freelist_pop(fl)) != NULL) uvw__free(p);
}

#endif
