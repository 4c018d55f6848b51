/* call-soon (asyncio's call_soon) and the thread-safe call-soon
 * (call_soon_threadsafe). */
#include "alloc.h"
#include "error.h"
#include "loop_internal.h"

/* Entries queued from foreign threads: allocated by the sender, since the
 * per-loop record pool belongs to the loop thread. */
struct uvw__ts_entry_s {
  uvw__ts_entry_t *next;
  uvw_soon_cb cb;
  void *arg;
  uvw_context_t *ctx; /* a copy of the sending thread's context */
};

static int bad_loop(const char *fn) {
  uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "%s: loop or callback is NULL", fn);
  return UVW_EINVAL;
}

int uvw_loop_call_soon(uv_loop_t *loop, uvw_soon_cb cb, void *arg) { return uvw__loop_call_soon_ex(loop, cb, arg, NULL); }

int uvw__loop_call_soon_ex(uv_loop_t *loop, uvw_soon_cb cb, void *arg, uvw_soon_cb drop) {
  if (loop == NULL || cb == NULL) return bad_loop("uvw_loop_call_soon");
  uvw__loop_t *L = uvw__loop_get(loop);
  if (L == NULL) return uvw_error_code(uvw_last_error());
  int rc = uvw__loop_soon_init(L);
  if (rc != 0) {
    uvw__error_set(rc, UVW_KIND_RUNTIME_ERROR, "uvw_loop_call_soon: cannot start the loop's idle handle: %s",
                   uv_strerror(rc));
    return rc;
  }
  /* A queued entry is a record outside the table: key NULL, no slot. */
  uvw__reg_t *r = uvw__reg_prepare(L, NULL, 0, (uvw__fn)cb, (uvw__fn)drop);
  if (r == NULL) return UVW_ENOMEM;
  r->extra = arg;
  uvw__soon_push(L, r);
  return 0;
}

void uvw__soon_push(uvw__loop_t *L, uvw__reg_t *r) {
  r->next = NULL;
  if (L->soon_tail)
    L->soon_tail->next = r;
  else
    L->soon_head = r;
  L->soon_tail = r;
  if (!uv_is_active((uv_handle_t *)&L->soon_idle)) uv_idle_start(&L->soon_idle, uvw__soon_drain);
}

/* Runs the entries queued before this turn; entries queued by them run on
 * the next turn, as asyncio does. */
void uvw__soon_drain(uv_idle_t *idle) {
  uvw__loop_t *L = (uvw__loop_t *)((char *)idle - offsetof(uvw__loop_t, soon_idle));
  uvw__reg_t *r = L->soon_head, *last = L->soon_tail;
  L->soon_head = L->soon_tail = NULL;
  uv_idle_stop(idle);
  while (r != NULL) {
    uvw__reg_t *next = r == last ? NULL : r->next;
    uvw__frame_t f;
    uvw__reg_begin(&f, L, r);
    ((uvw_soon_cb)r->cb)(r->extra);
    r->dead = 1;
    uvw__reg_end(&f, L, r);
    r = next;
  }
}

void uvw__soon_free_all(uvw__loop_t *L) {
  for (uvw__reg_t *r = L->soon_head, *next; r; r = next) {
    next = r->next;
    if (r->cb2) ((uvw_soon_cb)r->cb2)(r->extra); /* never ran: let its argument go */
    uvw__capture_release(r->ctx, r->task);
    r->ctx = NULL;
    r->task = NULL;
  }
  L->soon_head = L->soon_tail = NULL;
  for (uvw__ts_entry_t *e = L->ts_head, *next; e; e = next) {
    next = e->next;
    uvw_context_unref(e->ctx);
    uvw__free(e);
  }
  L->ts_head = L->ts_tail = NULL;
}

int uvw_loop_call_soon_threadsafe(uv_loop_t *loop, uvw_soon_cb cb, void *arg) {
  if (loop == NULL || cb == NULL) return bad_loop("uvw_loop_call_soon_threadsafe");
  uvw__loop_t *L = uvw__loop_find(loop);
  if (L == NULL || !L->ts_ready) {
    uvw__error_set(UVW_EINVAL, UVW_KIND_RUNTIME_ERROR,
                   "uvw_loop_call_soon_threadsafe: loop %p is not attached (call uvw_loop_attach on its thread first)",
                   (void *)loop);
    return UVW_EINVAL;
  }
  uvw__ts_entry_t *e = uvw__malloc(sizeof(*e));
  if (e == NULL) return uvw__error_nomem("thread-safe call-soon entry");
  e->ctx = uvw_context_copy_current();
  if (e->ctx == NULL) {
    uvw__free(e);
    return UVW_ENOMEM;
  }
  e->cb = cb;
  e->arg = arg;
  e->next = NULL;
  pthread_mutex_lock(&L->ts_lock);
  if (L->ts_tail)
    L->ts_tail->next = e;
  else
    L->ts_head = e;
  L->ts_tail = e;
  pthread_mutex_unlock(&L->ts_lock);
  uv_async_send(&L->ts_async);
  return 0;
}

void uvw__ts_drain(uv_async_t *async) {
  uvw__loop_t *L = (uvw__loop_t *)((char *)async - offsetof(uvw__loop_t, ts_async));
  pthread_mutex_lock(&L->ts_lock);
  uvw__ts_entry_t *e = L->ts_head;
  L->ts_head = L->ts_tail = NULL;
  pthread_mutex_unlock(&L->ts_lock);
  while (e != NULL) {
    uvw__ts_entry_t *next = e->next;
    uvw__frame_t f;
    uvw__frame_begin(&f, L, e->ctx, NULL);
    e->cb(e->arg);
    uvw__frame_end(&f);
    uvw_context_unref(e->ctx);
    uvw__free(e);
    e = next;
  }
}
