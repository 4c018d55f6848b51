/* Per-loop state: found from a loop pointer (loop->data stays the user's),
 * created on first use, freed by uvw_loop_close. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "loop_internal.h"

/* The registry is a short list under a mutex; the hot path hits a one-entry
 * per-thread cache. A process-wide generation invalidates every cache when a
 * state is freed, so a new loop at a recycled address never finds a stale
 * state through another thread's cache. */
typedef struct entry_s {
  struct entry_s *next;
  uvw__loop_t *state;
} entry_t;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static entry_t *registry;
static atomic_uint_fast64_t registry_gen = 1;

static __thread struct {
  uv_loop_t *loop;
  uvw__loop_t *state;
  uint64_t gen;
} cache __attribute__((tls_model("initial-exec")));

static uvw__loop_t *lookup_locked(uv_loop_t *loop) {
  for (entry_t *e = registry; e; e = e->next)
    if (e->state->loop == loop) return e->state;
  return NULL;
}

uvw__loop_t *uvw__loop_find(uv_loop_t *loop) {
  uint64_t gen = atomic_load_explicit(&registry_gen, memory_order_acquire);
  if (cache.loop == loop && cache.gen == gen) return cache.state;
  pthread_mutex_lock(&registry_lock);
  uvw__loop_t *L = lookup_locked(loop);
  pthread_mutex_unlock(&registry_lock);
  if (L) {
    cache.loop = loop;
    cache.state = L;
    cache.gen = gen;
  }
  return L;
}

static int init_handles(uvw__loop_t *L) {
  int rc = uv_idle_init(L->loop, &L->soon_idle);
  if (rc != 0) return rc;
  L->soon_ready = 1;
  rc = uv_async_init(L->loop, &L->ts_async, uvw__ts_drain);
  if (rc != 0) return rc;
  /* Wakes the loop for foreign threads but must not keep it alive. */
  uv_unref((uv_handle_t *)&L->ts_async);
  L->ts_ready = 1;
  return 0;
}

uvw__loop_t *uvw__loop_get(uv_loop_t *loop) {
  uvw__loop_t *L = uvw__loop_find(loop);
  if (L) return L;
  L = uvw__calloc(1, sizeof(*L));
  entry_t *e = uvw__malloc(sizeof(*e));
  if (L == NULL || e == NULL) {
    uvw__free(L);
    uvw__free(e);
    uvw__error_nomem("loop state");
    return NULL;
  }
  L->loop = loop;
  pthread_mutex_init(&L->ts_lock, NULL);
  int rc = init_handles(L);
  if (rc != 0) {
    uvw_error_t *err = uvw__error_set(rc, UVW_KIND_RUNTIME_ERROR, "cannot attach uvwool to the loop: %s",
                                      uv_strerror(rc));
    uvw__error_field(err, "libuv_error", "%s", uv_err_name(rc));
    /* A handle that did initialise is registered with the loop: it stays,
     * closed, until the loop runs; dropping the state here is not safe. */
    if (!L->soon_ready) {
      pthread_mutex_destroy(&L->ts_lock);
      uvw__free(L);
      uvw__free(e);
      return NULL;
    }
  }
  e->state = L;
  pthread_mutex_lock(&registry_lock);
  e->next = registry;
  registry = e;
  pthread_mutex_unlock(&registry_lock);
  return rc == 0 ? L : NULL;
}

int uvw_loop_attach(uv_loop_t *loop) {
  if (loop == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_loop_attach: loop is NULL");
    return UVW_EINVAL;
  }
  return uvw__loop_get(loop) ? 0 : uvw_error_code(uvw_last_error());
}

void uvw__soon_free_all(uvw__loop_t *L);
void uvw__factory_free(uvw__loop_t *L);

int uvw_loop_close(uv_loop_t *loop) {
  pthread_mutex_lock(&registry_lock);
  entry_t **p = &registry;
  while (*p && (*p)->state->loop != loop) p = &(*p)->next;
  entry_t *e = *p;
  if (e) *p = e->next;
  pthread_mutex_unlock(&registry_lock);
  if (e != NULL) {
    uvw__loop_t *L = e->state;
    atomic_fetch_add_explicit(&registry_gen, 1, memory_order_release);
    if (L->soon_ready) uv_close((uv_handle_t *)&L->soon_idle, NULL);
    if (L->ts_ready) uv_close((uv_handle_t *)&L->ts_async, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* runs the close callbacks of our handles */
    uvw__soon_free_all(L);
    uvw__reg_free_all(L);
    uvw__factory_free(L);
    pthread_mutex_destroy(&L->ts_lock);
    uvw__free(L);
    uvw__free(e);
  }
  return uv_loop_close(loop);
}
