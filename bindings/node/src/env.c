#include "env.h"

#include <stdlib.h>

static __thread uvwn_env_t *thread_env;

uvwn_env_t *uvwn_env_of_thread(void) {
  return thread_env;
}

static void env_unhold(uvwn_env_t *e) {
  pthread_mutex_lock(&e->lock);
  int last = --e->holders == 0;
  pthread_mutex_unlock(&e->lock);
  if (!last) return;
  pthread_mutex_destroy(&e->lock);
  free(e);
}

/* Each live opaque value holds its env (uvwn_env_hold), so a value that
 * outlives the env (held by a C context a pool thread or another addon
 * still has) never touches freed memory. */
void uvwn_env_hold(uvwn_env_t *e) {
  pthread_mutex_lock(&e->lock);
  e->holders++;
  pthread_mutex_unlock(&e->lock);
}

static void drain_cb(uv_async_t *async) {
  uvwn_env_t *e = async->data;
  pthread_mutex_lock(&e->lock);
  uvwn_opaque_t *list = e->dead;
  e->dead = NULL;
  pthread_mutex_unlock(&e->lock);
  while (list) {
    uvwn_opaque_t *next = list->next;
    napi_delete_reference(e->env, list->ref);
    free(list);
    env_unhold(e); /* the async handle's hold keeps e alive meanwhile */
    list = next;
  }
}

static void drain_closed(uv_handle_t *h) {
  env_unhold(h->data);
}

/* Teardown: Node deletes every reference with the env; what is still
 * queued, or released later by finalizers, is only freed. */
static void env_cleanup(void *arg) {
  uvwn_env_t *e = arg;
  pthread_mutex_lock(&e->lock);
  e->closed = 1;
  if (thread_env == e) thread_env = NULL;
  uvwn_opaque_t *list = e->dead;
  e->dead = NULL;
  pthread_mutex_unlock(&e->lock);
  while (list) {
    uvwn_opaque_t *next = list->next;
    free(list);
    env_unhold(e);
    list = next;
  }
  uv_close((uv_handle_t *)&e->drain, drain_closed);
}

static void env_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  uvwn_env_t *e = data;
  napi_ref *refs[] = {&e->error_factory, &e->current_mirror, &e->on_reply,       &e->on_closed,
                      &e->on_step,       &e->on_cancel,      &e->on_worker_error, &e->on_worker_closed};
  for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
    if (*refs[i]) napi_delete_reference(env, *refs[i]);
    *refs[i] = NULL;
  }
  env_unhold(e);
}

int uvwn_env_init(napi_env env) {
  uv_loop_t *loop;
  uvwn_env_t *e = calloc(1, sizeof *e);
  if (e == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_async_init(loop, &e->drain, drain_cb) != 0) {
    free(e);
    napi_throw_error(env, "UVW_ENOMEM", "uvwool: cannot set up the addon on this Node environment");
    return -1;
  }
  e->env = env;
  e->drain.data = e;
  e->holders = 2;
  pthread_mutex_init(&e->lock, NULL);
  uv_unref((uv_handle_t *)&e->drain); /* never keeps the process alive */
  if (napi_set_instance_data(env, e, env_finalize, NULL) != napi_ok) {
    e->holders = 1;
    uv_close((uv_handle_t *)&e->drain, drain_closed);
    napi_throw_error(env, "UVW_ENOMEM", "uvwool: cannot set the addon's instance data");
    return -1;
  }
  napi_add_env_cleanup_hook(env, env_cleanup, e);
  thread_env = e;
  return 0;
}

uvwn_env_t *uvwn_env(napi_env env) {
  uvwn_env_t *e = NULL;
  napi_get_instance_data(env, (void **)&e);
  return e;
}

void uvwn_env_release(uvwn_opaque_t *o) {
  uvwn_env_t *e = o->owner;
  pthread_mutex_lock(&e->lock);
  if (e->closed) {
    pthread_mutex_unlock(&e->lock);
    free(o);
    env_unhold(e);
    return;
  }
  o->next = e->dead;
  e->dead = o;
  /* Under the lock: env_cleanup sets `closed` under it before closing the
   * handle, so no send reaches a closed handle. */
  uv_async_send(&e->drain);
  pthread_mutex_unlock(&e->lock);
}
