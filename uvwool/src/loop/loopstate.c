/* Per-loop state: found from a loop pointer (loop->data stays the user's),
 * created on first use, freed by uvw_loop_close. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "loop_internal.h"

/* The registry is a short list under a mutex; the hot path hits the
 * per-thread cache uvw__loop_find reads inline (loop_scope.h). */
typedef struct entry_s {
  struct entry_s *next;
  uvw__loop_t *state;
} entry_t;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static entry_t *registry;
atomic_uint_fast64_t uvw__loop_registry_gen = 1;
static atomic_uint_fast64_t state_serial = 1;

__thread uvw__loop_cache_t uvw__loop_cache __attribute__((tls_model("initial-exec")));

static uvw__loop_t *lookup_locked(uv_loop_t *loop) {
  for (entry_t *e = registry; e; e = e->next)
    if (e->state->loop == loop) return e->state;
  return NULL;
}

uvw__loop_t *uvw__loop_find_slow(uv_loop_t *loop) {
  uint64_t gen = atomic_load_explicit(&uvw__loop_registry_gen, memory_order_acquire);
  pthread_mutex_lock(&registry_lock);
  uvw__loop_t *L = lookup_locked(loop);
  pthread_mutex_unlock(&registry_lock);
  if (L) {
    uvw__loop_cache.loop = loop;
    uvw__loop_cache.state = L;
    uvw__loop_cache.gen = gen;
  }
  return L;
}

/* The state owns no libuv handle until a feature needs one: the idle of
 * call-soon on first use (soon.c), the async of the thread-safe call-soon on
 * uvw_loop_attach. A loop that only sees wrapped registrations (transparent
 * mode above all) thus keeps exactly the handles, fds and uv_walk /
 * uv_loop_close results it would have without uvwool. */
int uvw__loop_soon_init(uvw__loop_t *L) {
  if (L->soon_ready) return 0;
  int rc = uv_idle_init(L->loop, &L->soon_idle);
  if (rc == 0) L->soon_ready = 1;
  return rc;
}

static int attach_error(int rc) {
  uvw_error_t *err =
      uvw__error_set(rc, UVW_KIND_RUNTIME_ERROR, "cannot attach uvwool to the loop: %s", uv_strerror(rc));
  uvw__error_field(err, "libuv_error", "%s", uv_err_name(rc));
  return rc;
}

uvw__loop_t *uvw__loop_get(uv_loop_t *loop) {
  uvw__loop_t *L = uvw__loop_find(loop);
  if (L) return L;
  uvw__debug_env();
  L = uvw__calloc(1, sizeof(*L));
  entry_t *e = uvw__malloc(sizeof(*e));
  if (L == NULL || e == NULL) {
    uvw__free(L);
    uvw__free(e);
    uvw__error_nomem("loop state");
    return NULL;
  }
  L->loop = loop;
  L->serial = atomic_fetch_add_explicit(&state_serial, 1, memory_order_relaxed);
  pthread_mutex_init(&L->ts_lock, NULL);
  e->state = L;
  pthread_mutex_lock(&registry_lock);
  e->next = registry;
  registry = e;
  pthread_mutex_unlock(&registry_lock);
  return L;
}

int uvw_loop_attach(uv_loop_t *loop) {
  if (loop == NULL) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "uvw_loop_attach: loop is NULL");
    return UVW_EINVAL;
  }
  uvw__loop_t *L = uvw__loop_get(loop);
  if (L == NULL) return uvw_error_code(uvw_last_error());
  if (L->ts_ready) return 0;
  int rc = uv_async_init(L->loop, &L->ts_async, uvw__ts_drain);
  if (rc != 0) return attach_error(rc);
  /* Wakes the loop for foreign threads but must not keep it alive. */
  uv_unref((uv_handle_t *)&L->ts_async);
  L->ts_ready = 1;
  return 0;
}

void uvw__soon_free_all(uvw__loop_t *L);
void uvw__factory_free(uvw__loop_t *L);

/* uv_walk callback: counts the handles that are not the state's own. */
typedef struct {
  uvw__loop_t *L;
  unsigned others;
} busy_count_t;
static void count_others(uv_handle_t *h, void *arg) {
  busy_count_t *c = arg;
  if (h != (uv_handle_t *)&c->L->soon_idle && h != (uv_handle_t *)&c->L->ts_async) c->others++;
}

int uvw_loop_close(uv_loop_t *loop) {
  if (loop == NULL) return UVW__UV(UV_EINVAL);
  uvw__loop_t *found = uvw__loop_find(loop);
  if (found != NULL) {
    /* uv_loop_close would refuse (UV_EBUSY) for the user's handles or
     * requests: refuse before touching anything, so the state (and every
     * capture of those live handles) is kept. */
    busy_count_t c = {found, 0};
    uv_walk(loop, count_others, &c);
    if (c.others > 0 || loop->active_reqs.count > 0) return UVW__UV(UV_EBUSY);
  }
  pthread_mutex_lock(&registry_lock);
  entry_t **p = &registry;
  while (*p && (*p)->state->loop != loop) p = &(*p)->next;
  entry_t *e = *p;
  if (e) *p = e->next;
  pthread_mutex_unlock(&registry_lock);
  if (e != NULL) {
    uvw__loop_t *L = e->state;
    atomic_fetch_add_explicit(&uvw__loop_registry_gen, 1, memory_order_release);
    if (L->soon_ready) uv_close((uv_handle_t *)&L->soon_idle, NULL);
    if (L->ts_ready) uv_close((uv_handle_t *)&L->ts_async, NULL);
    /* Only our own handles are left: this turn runs just their close. */
    if (L->soon_ready || L->ts_ready) uv_run(loop, UV_RUN_NOWAIT);
    uvw__soon_free_all(L);
    uvw__reg_free_all(L);
    uvw__factory_free(L);
    pthread_mutex_destroy(&L->ts_lock);
    uvw__free(L);
    uvw__free(e);
  }
  return UVW__UV(uv_loop_close(loop));
}
