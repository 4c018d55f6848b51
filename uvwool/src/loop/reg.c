/* Registration records: capture, the per-loop table, release. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "loop_internal.h"

#define CHUNK_RECORDS 64
#define MIN_BUCKETS 64

typedef struct chunk_s {
  struct chunk_s *next;
  uvw__reg_t records[CHUNK_RECORDS];
} chunk_t;

static size_t bucket_of(const uvw__loop_t *L, const void *key, unsigned slot) {
  uint64_t h = (uint64_t)(uintptr_t)key ^ slot;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return (size_t)h & (L->nbuckets - 1);
}

/* The task's pending count is the core task's, so a registration made under
 * any kind of task (loop or runtime) counts the same way; what the last one
 * ending means is the task kind's business (ops->drained). */
int uvw__capture(uvw_context_t **ctx, uvw__task_t **task) {
  *ctx = uvw_context_copy_current();
  if (*ctx == NULL) return UVW_ENOMEM;
  uvw__task_t *t = uvw__tstate.task;
  *task = uvw__task_ref(t);
  if (t) atomic_fetch_add_explicit(&t->pending, 1, memory_order_relaxed);
  return 0;
}

void uvw__capture_release(uvw_context_t *ctx, uvw__task_t *task) {
  uvw_context_unref(ctx);
  if (task) {
    uvw__task_pending_done(task);
    uvw__task_unref(task);
  }
}

static void maybe_grow(uvw__loop_t *L);

static uvw__reg_t *record_alloc(uvw__loop_t *L) {
  if (L->free_list == NULL) {
    chunk_t *c = uvw__malloc(sizeof(*c));
    if (c == NULL) return NULL;
    c->next = L->chunks;
    L->chunks = c;
    for (int i = CHUNK_RECORDS - 1; i >= 0; i--) {
      c->records[i].next = L->free_list;
      L->free_list = &c->records[i];
    }
  }
  uvw__reg_t *r = L->free_list;
  L->free_list = r->next;
  memset(r, 0, sizeof(*r));
  return r;
}

static void record_free(uvw__loop_t *L, uvw__reg_t *r) {
  if (L->last_found == r) L->last_found = NULL;
  if (uvw__reg_sharing == r) uvw__reg_sharing = NULL;
  if (r->retired == r->ctx) r->retired = NULL; /* one reference for both roles */
  uvw__capture_release(r->ctx, r->task);
  uvw_context_unref(r->retired);
  r->ctx = r->retired = NULL;
  r->task = NULL;
  r->next = L->free_list;
  L->free_list = r;
}

uvw__reg_t *uvw__reg_reserve(uvw__loop_t *L) {
  uvw__reg_t *r = record_alloc(L);
  if (r == NULL) uvw__error_nomem("registration");
  return r;
}

uvw__reg_t *uvw__reg_prepare(uvw__loop_t *L, const void *key, unsigned slot, uvw__fn cb, uvw__fn cb2) {
  /* Everything commit needs is allocated here, before libuv is called, so
   * commit cannot fail once libuv has accepted the registration. */
  maybe_grow(L);
  uvw__reg_t *r = L->nbuckets ? record_alloc(L) : NULL;
  if (r == NULL) {
    uvw__error_nomem("registration");
    return NULL;
  }
  if (uvw__capture(&r->ctx, &r->task) != 0) {
    r->next = L->free_list;
    L->free_list = r;
    return NULL;
  }
  r->key = key;
  r->slot = slot;
  r->cb = cb;
  r->cb2 = cb2;
  r->fresh = 1;
  return r;
}

void uvw__reg_discard(uvw__loop_t *L, uvw__reg_t *r) { record_free(L, r); }

uvw__reg_t *uvw__reg_find_slow(uvw__loop_t *L, const void *key, unsigned slot) {
  if (L->nbuckets == 0) return NULL;
  for (uvw__reg_t *r = L->buckets[bucket_of(L, key, slot)]; r; r = r->next)
    if (r->key == key && r->slot == slot) return L->last_found = r;
  return NULL;
}

static void unlink_record(uvw__loop_t *L, uvw__reg_t *r) {
  if (L->last_found == r) L->last_found = NULL;
  uvw__reg_t **p = &L->buckets[bucket_of(L, r->key, r->slot)];
  while (*p != r) p = &(*p)->next;
  *p = r->next;
  r->in_table = 0;
  L->count--;
}

/* Double the table when it holds more records than buckets. A failed grow
 * only makes chains longer, so it is not an error. */
static void maybe_grow(uvw__loop_t *L) {
  if (L->nbuckets != 0 && L->count < L->nbuckets) return;
  size_t n = L->nbuckets ? L->nbuckets * 2 : MIN_BUCKETS;
  uvw__reg_t **b = uvw__calloc(n, sizeof(*b));
  if (b == NULL) return;
  uvw__reg_t **old = L->buckets;
  size_t oldn = L->nbuckets;
  L->buckets = b;
  L->nbuckets = n;
  for (size_t i = 0; i < oldn; i++) {
    for (uvw__reg_t *r = old[i], *next; r; r = next) {
      next = r->next;
      uvw__reg_t **head = &b[bucket_of(L, r->key, r->slot)];
      r->next = *head;
      *head = r;
    }
  }
  uvw__free(old);
}

/* Let go of r's capture. The context stays alive as `retired` while a
 * callback of r runs in it, and already is when it is shared with it. */
static void drop_capture(uvw__reg_t *r) {
  if (r->ctx != NULL && r->ctx == r->retired) {
    if (uvw__reg_sharing == r) uvw__reg_sharing = NULL;
    uvw__capture_release(NULL, r->task);
  } else if (r->busy && r->retired == NULL && r->ctx != NULL) {
    r->retired = r->ctx; /* still entered by the running callback */
    uvw__capture_release(NULL, r->task);
  } else {
    uvw__capture_release(r->ctx, r->task);
  }
  r->ctx = NULL;
  r->task = NULL;
}

/* Swap the live record's captures for the new ones, keeping the record (and
 * its busy state) in place: a callback re-registering its own handle. */
static void replace_in_place(uvw__reg_t *live, uvw__reg_t *r) {
  drop_capture(live);
  live->fresh = 1;
  live->ctx = r->ctx;
  live->task = r->task;
  live->cb = r->cb;
  live->cb2 = r->cb2;
  live->extra = r->extra;
  live->dead = 0;
  r->ctx = NULL;
  r->task = NULL;
}

void uvw__reg_commit(uvw__loop_t *L, uvw__reg_t *r) {
  uvw__reg_t *live = uvw__reg_find(L, r->key, r->slot);
  if (live != NULL) {
    replace_in_place(live, r);
    record_free(L, r);
    return;
  }
  uvw__reg_t **head = &L->buckets[bucket_of(L, r->key, r->slot)];
  r->next = *head;
  *head = r;
  r->in_table = 1;
  L->count++;
}

void uvw__reg_stop(uvw__loop_t *L, const void *key, unsigned slot) {
  uvw__reg_t *r = uvw__reg_find(L, key, slot);
  if (r == NULL || r->ctx == NULL) return;
  drop_capture(r);
}

void uvw__reg_release(uvw__loop_t *L, uvw__reg_t *r) {
  if (r->busy) {
    r->dead = 1;
    return;
  }
  if (r->in_table) unlink_record(L, r);
  record_free(L, r);
}

void uvw__reg_release_key(uvw__loop_t *L, const void *key, unsigned slot) {
  uvw__reg_t *r = uvw__reg_find(L, key, slot);
  if (r) uvw__reg_release(L, r);
}

void uvw__reg_end_slow(uvw__loop_t *L, uvw__reg_t *r) {
  uvw_context_unref(r->retired);
  r->retired = NULL;
  if (r->dead) {
    if (r->in_table) unlink_record(L, r);
    record_free(L, r);
  }
}

void uvw__reg_free_all(uvw__loop_t *L) {
  for (size_t i = 0; i < L->nbuckets; i++) {
    for (uvw__reg_t *r = L->buckets[i], *next; r; r = next) {
      next = r->next;
      record_free(L, r);
    }
  }
  uvw__free(L->buckets);
  L->buckets = NULL;
  L->last_found = NULL;
  L->nbuckets = L->count = 0;
  for (chunk_t *c = L->chunks, *next; c; c = next) {
    next = c->next;
    uvw__free(c);
  }
  L->chunks = NULL;
  L->free_list = NULL;
}

/* ---- renewal in place (the reasoning is in loop_internal.h) -------------------- */

__thread uvw__reg_t *uvw__reg_sharing __attribute__((tls_model("initial-exec")));

int uvw__reg_share_split(void) {
  uvw__reg_t *r = uvw__reg_sharing;
  uvw_context_t *own = uvw_context_copy(r->ctx); /* entered here: a plain copy */
  if (own == NULL) return UVW_ENOMEM;
  uvw__reg_sharing = NULL;
  r->ctx = own; /* the running callback keeps `retired` */
  r->fresh = 1;
  return 0;
}

void uvw__reg_share_end_slow(uvw__reg_t *r) {
  if (r->busy != 1) return; /* an inner frame: the outer one settles it */
  uvw__reg_sharing = NULL;
  if (r->dead) {
    r->ctx = NULL; /* freed after the callback, through `retired` */
    return;
  }
  /* Someone kept a reference: the capture must be an object of its own.
   * Without memory for it the record is left stopped (no capture, the
   * task's pending count given back): its next callback runs in whatever
   * context is current, as when entering fails (loop_scope.h). */
  if ((r->ctx = uvw_context_copy(r->retired)) == NULL) {
    uvw__capture_release(NULL, r->task);
    r->task = NULL;
  }
  r->fresh = 1;
}

void uvw__reg_missing(const char *where, const void *key) {
  uvw_error_t *w = uvw__error_new(0, UVW_KIND_WOOL_WARNING,
                                  "%s: no uvwool registration for %p (handle driven past uvwool?)", where, key);
  uvw__warn(w);
}
