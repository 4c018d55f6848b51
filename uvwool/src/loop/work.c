/* The work queue and threads.
 *
 * uv_queue_work's work callback runs on a pool thread in the context captured
 * at submission (asyncio.to_thread without copying): touching an armed
 * variable there is a thread ChainContention. uvw_to_thread runs it in a
 * detached fork instead. Threads started by uvw_thread_create run in a
 * detached fork too; plain uv_thread_create threads start unarmed.
 *
 * Work records are found from the pool thread, so they live in their own
 * table under a mutex, not in the loop-thread-only registration table; a
 * pool round trip costs microseconds, the lock does not count. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "loop_internal.h"

typedef struct work_s {
  struct work_s *next;
  uv_work_t *req;
  uv_work_cb work_cb;
  uv_after_work_cb after_cb;
  uvw_context_t *ctx;      /* captured: after_cb runs in it, and plain work too */
  uvw_context_t *work_ctx; /* the fork work_cb runs in (to_thread), or NULL */
  uvw__task_t *task;
} work_t;

static pthread_mutex_t work_lock = PTHREAD_MUTEX_INITIALIZER;
/* In-flight requests, hashed by request pointer: a program may queue tens of
 * thousands at once, so a lookup must not walk them all. The table doubles
 * when it holds more records than buckets; a failed grow only lengthens the
 * chains. */
#define WORK_MIN_BUCKETS 64
static work_t **work_buckets;
static size_t work_nbuckets, work_count;
/* Chain steps and lookups, for the test that the lookup stays O(1). */
size_t uvw__work_probes, uvw__work_lookups;
/* Finished records kept for reuse, so a steady stream of work allocates
 * nothing per request. */
#define WORK_CACHE_MAX 64
static work_t *work_cache;
static unsigned work_cache_len;

static work_t *work_alloc(void) {
  pthread_mutex_lock(&work_lock);
  work_t *w = work_cache;
  if (w) {
    work_cache = w->next;
    work_cache_len--;
  }
  pthread_mutex_unlock(&work_lock);
  if (w == NULL) w = uvw__malloc(sizeof(*w));
  if (w) memset(w, 0, sizeof(*w));
  return w;
}

static void work_free(work_t *w) {
  uvw_context_unref(w->work_ctx);
  uvw__capture_release(w->ctx, w->task);
  pthread_mutex_lock(&work_lock);
  if (work_cache_len < WORK_CACHE_MAX) {
    w->next = work_cache;
    work_cache = w;
    work_cache_len++;
    w = NULL;
  }
  pthread_mutex_unlock(&work_lock);
  uvw__free(w);
}

/* Drop the cache at exit so leak checkers see a clean process. */
__attribute__((destructor)) static void work_cache_drain(void) {
  if (work_count == 0) {
    uvw__free(work_buckets);
    work_buckets = NULL;
    work_nbuckets = 0;
  }
  while (work_cache) {
    work_t *w = work_cache;
    work_cache = w->next;
    uvw__free(w);
  }
  work_cache_len = 0;
}

static size_t work_bucket(const uv_work_t *req) {
  uint64_t h = (uint64_t)(uintptr_t)req;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return (size_t)h & (work_nbuckets - 1);
}

/* Under work_lock. */
static void work_grow(void) {
  size_t n = work_nbuckets ? work_nbuckets * 2 : WORK_MIN_BUCKETS;
  work_t **b = uvw__calloc(n, sizeof(*b));
  if (b == NULL) return;
  work_t **old = work_buckets;
  size_t oldn = work_nbuckets;
  work_buckets = b;
  work_nbuckets = n;
  for (size_t i = 0; i < oldn; i++) {
    for (work_t *w = old[i], *next; w; w = next) {
      next = w->next;
      size_t k = work_bucket(w->req);
      w->next = b[k];
      b[k] = w;
    }
  }
  uvw__free(old);
}

/* Publish w; UV_ENOMEM when not even the first bucket array exists. */
static int work_insert(work_t *w) {
  pthread_mutex_lock(&work_lock);
  if (work_count >= work_nbuckets) work_grow();
  int rc = work_nbuckets ? 0 : UV_ENOMEM;
  if (rc == 0) {
    size_t k = work_bucket(w->req);
    w->next = work_buckets[k];
    work_buckets[k] = w;
    work_count++;
  }
  pthread_mutex_unlock(&work_lock);
  return rc;
}

static work_t *take_or_find(uv_work_t *req, int take) {
  pthread_mutex_lock(&work_lock);
  work_t *w = NULL;
  if (work_nbuckets) {
    uvw__work_lookups++;
    work_t **p = &work_buckets[work_bucket(req)];
    while (*p && (*p)->req != req) {
      p = &(*p)->next;
      uvw__work_probes++;
    }
    w = *p;
    if (w && take) {
      *p = w->next;
      work_count--;
    }
  }
  pthread_mutex_unlock(&work_lock);
  return w;
}

static void work_trampoline(uv_work_t *req) {
  work_t *w = take_or_find(req, 0);
  if (w == NULL) {
    uvw__reg_missing("uv_work_cb", req);
    return;
  }
  uvw__frame_t f;
  uvw__frame_begin(&f, NULL, w->work_ctx ? w->work_ctx : w->ctx, w->work_ctx ? NULL : w->task);
  w->work_cb(req);
  uvw__frame_end(&f);
}

static void after_trampoline(uv_work_t *req, int status) {
  work_t *w = take_or_find(req, 1);
  if (w == NULL) {
    uvw__reg_missing("uv_after_work_cb", req);
    return;
  }
  if (w->after_cb) {
    uvw__frame_t f;
    uvw__frame_begin(&f, uvw__loop_find(req->loop), w->ctx, w->task);
    w->after_cb(req, status);
    uvw__frame_end(&f);
  }
  work_free(w);
}

static int submit(uv_loop_t *loop, uv_work_t *req, uv_work_cb work_cb, uv_after_work_cb after_cb, int fork) {
  if (work_cb == NULL) return uv_queue_work(loop, req, work_cb, after_cb);
  work_t *w = work_alloc();
  if (w == NULL) return UV_ENOMEM;
  if (uvw__capture(&w->ctx, &w->task) != 0 ||
      (fork && (w->work_ctx = uvw_context_fork(w->ctx, UVW_PROPAGATE_THREAD)) == NULL)) {
    work_free(w);
    return UV_ENOMEM;
  }
  w->req = req;
  w->work_cb = work_cb;
  w->after_cb = after_cb;
  if (work_insert(w) != 0) {
    work_free(w);
    uvw__error_nomem("uv_queue_work");
    return UV_ENOMEM;
  }
  int rc = uv_queue_work(loop, req, work_trampoline, after_trampoline);
  if (rc != 0) {
    take_or_find(req, 1);
    work_free(w);
  }
  return rc;
}

/* UVWOOL_QUEUE_WORK=to_thread: the opt-in for programs that cannot call
 * uvw_to_thread (transparent mode's plain uv_queue_work), read once. Any
 * other value, or none, keeps uv_queue_work's own semantics. */
static pthread_once_t queue_work_once = PTHREAD_ONCE_INIT;
static int queue_work_forks;

static void queue_work_mode(void) {
  const char *mode = getenv("UVWOOL_QUEUE_WORK");
  queue_work_forks = mode != NULL && strcmp(mode, "to_thread") == 0;
  if (mode != NULL && !queue_work_forks && mode[0] != '\0') {
    uvw_error_t *w = uvw__error_new(0, UVW_KIND_WOOL_WARNING,
                                    "UVWOOL_QUEUE_WORK=%s is not a known mode (to_thread): ignored", mode);
    uvw__warn(w);
  }
}

int uvw_queue_work(uv_loop_t *loop, uv_work_t *req, uv_work_cb work_cb, uv_after_work_cb after_work_cb) {
  pthread_once(&queue_work_once, queue_work_mode);
  return UVW__UV(submit(loop, req, work_cb, after_work_cb, queue_work_forks));
}

int uvw_to_thread(uv_loop_t *loop, uv_work_t *req, uv_work_cb work_cb, uv_after_work_cb after_work_cb) {
  return uvw__uv_failed(submit(loop, req, work_cb, after_work_cb, 1), __func__, "uv_queue_work");
}

/* ---- threads ------------------------------------------------------------------ */

typedef struct {
  uv_thread_cb entry;
  void *arg;
  uvw_context_t *fork;
} start_t;

static void thread_trampoline(void *arg) {
  start_t *s = arg;
  uvw__frame_t f;
  uvw__frame_begin(&f, NULL, s->fork, NULL);
  s->entry(s->arg);
  uvw__frame_end(&f);
  uvw_context_unref(s->fork);
  uvw__free(s);
}

static start_t *prepare_start(uv_thread_cb entry, void *arg) {
  start_t *s = uvw__malloc(sizeof(*s));
  uvw_context_t *cur = uvw_context_current();
  if (s == NULL || cur == NULL || (s->fork = uvw_context_fork(cur, UVW_PROPAGATE_THREAD)) == NULL) {
    uvw__free(s);
    return NULL;
  }
  s->entry = entry;
  s->arg = arg;
  return s;
}

static int started(start_t *s, int rc) {
  if (rc != 0) {
    uvw_context_unref(s->fork);
    uvw__free(s);
  }
  return rc;
}

/* A NULL entry would crash the new thread: refused before it starts. */
int uvw_thread_create(uv_thread_t *tid, uv_thread_cb entry, void *arg) {
  if (entry == NULL) return UVW__UV(UV_EINVAL);
  start_t *s = prepare_start(entry, arg);
  if (s == NULL) return UVW__UV(UV_ENOMEM);
  return UVW__UV(started(s, uv_thread_create(tid, thread_trampoline, s)));
}

int uvw_thread_create_ex(uv_thread_t *tid, const uv_thread_options_t *params, uv_thread_cb entry, void *arg) {
  if (entry == NULL) return UVW__UV(UV_EINVAL);
  start_t *s = prepare_start(entry, arg);
  if (s == NULL) return UVW__UV(UV_ENOMEM);
  return UVW__UV(started(s, uv_thread_create_ex(tid, params, thread_trampoline, s)));
}
