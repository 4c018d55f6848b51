/* Per-env state of the addon (one per Node environment: the main thread
 * and each worker thread). */
#ifndef UVWOOL_NODE_ENV_H
#define UVWOOL_NODE_ENV_H

#include <node_api.h>
#include <pthread.h>
#include <uv.h>

/* In a Node-API callback: a failed call returns NULL to JS (its exception,
 * if any, is pending). */
#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) return NULL;                                                                                \
  } while (0)

typedef struct uvwn_opaque_s uvwn_opaque_t;

typedef struct uvwn_env_s {
  napi_env env;
  napi_ref error_factory;  /* index.js: builds a WoolError of the right class */
  napi_ref current_mirror; /* index.js: the C mirror of the current state */
  napi_ref on_reply;       /* lib/dispatch.js: settles a dispatch step (dispatch.c) */
  napi_ref on_closed;      /* lib/dispatch.js: settles a connection's or pool's close */
  napi_ref on_step;        /* lib/worker.js: runs one step of a hosted routine (worker.c) */
  napi_ref on_cancel;      /* lib/worker.js: the caller cancelled a running step */
  napi_ref on_worker_error; /* lib/worker.js: a peer dropped or a request refused */
  napi_ref on_worker_closed; /* lib/worker.js: settles a worker's close */
  /* JS values whose last C reference dropped wait here for the JS thread:
   * a reference cannot be deleted from a GC finalizer (Node keeps the value
   * alive) nor from another thread, so the release is posted to Node's own
   * loop through `drain`. */
  uv_async_t drain;
  pthread_mutex_t lock;
  uvwn_opaque_t *dead;
  int closed;   /* the env is tearing down: free without deleting */
  int holders;  /* the instance-data finalizer, the async's close, and one
                 * per live opaque value */
} uvwn_env_t;

struct uvwn_opaque_s {
  uvwn_env_t *owner;
  napi_ref ref;
  uvwn_opaque_t *next;
};

/* Sets up the env's state (instance data, the drain on Node's loop, the
 * teardown hook). 0, or -1 with a JS exception pending. */
int uvwn_env_init(napi_env env);
uvwn_env_t *uvwn_env(napi_env env);
/* The uvwool env of the calling thread (a Node environment runs on one
 * thread: the main one or a worker's), whatever addon's napi_env is at
 * hand: another addon's calls into include/uvwool/node.h find it here.
 * NULL when the package is not loaded on this thread. */
uvwn_env_t *uvwn_env_of_thread(void);
/* A new opaque value's hold on its env (released with the value). */
void uvwn_env_hold(uvwn_env_t *e);
/* From any thread: hands o to its env's JS thread for release. */
void uvwn_env_release(uvwn_opaque_t *o);

#endif
