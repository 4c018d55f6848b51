/* Connections and pools to uvwool-worker processes, as a JS Connection or
 * Pool holds them (lib/dispatch.js): open, close (settled through
 * on_closed), closed by the GC or at env teardown when JS did not. */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <uvwool/dispatch.h>

#include "convert.h"
#include "dispatch_js.h"
#include "env.h"
#include "error.h" /* the core's detail-record helpers */
#include "errors_js.h"

typedef struct peer_s {
  napi_env env;
  uvw_conn_t *conn;
  uvw_pool_t *pool;
  char *address;         /* for error messages */
  int closing;           /* close asked (by JS, the GC or env teardown): no dispatch after */
  int closed;            /* the close callback ran */
  int collected;         /* the JS object is gone: the close callback frees */
  int env_gone;          /* env teardown: no calls into JS */
  napi_ref close_req;    /* what on_closed settles, or NULL */
  napi_async_context close_async;
} peer_t;

napi_value uvwn_fail(napi_env env, int code, const char *fmt, const char *what) {
  uvw_error_kind_t kind = code == UVW_ENOMEM ? UVW_KIND_MEMORY_ERROR
                          : code == UVW_ECONNRESET ? UVW_KIND_RUNTIME_ERROR
                                                   : UVW_KIND_VALUE_ERROR;
  uvw__error_set(code, kind, fmt, what);
  return uvwn_throw_last(env);
}

/* ---- calling JS from the loop ------------------------------------------------ */

/* Calls the hook in *slot with argv through napi_make_callback (the
 * microtasks the call queues run before it returns); a throw is reported as
 * uncaught, as Node reports a throwing I/O callback. */
void uvwn_call_hook(napi_env env, napi_async_context async, napi_ref slot, size_t argc, napi_value *argv) {
  napi_value fn, recv, res, exc;
  bool pending = false;
  if (napi_get_reference_value(env, slot, &fn) == napi_ok && napi_get_global(env, &recv) == napi_ok)
    napi_make_callback(env, async, recv, fn, argc, argv, &res);
  napi_is_exception_pending(env, &pending);
  if (pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
}

int uvwn_js_alive(napi_env env) {
  uvwn_env_t *e = uvwn_env_of_thread();
  return e != NULL && e->env == env && !e->closed;
}

/* ---- peers ------------------------------------------------------------------- */

static void peer_free(peer_t *p) {
  free(p->address);
  free(p);
}

static void peer_closed(void *arg) {
  peer_t *p = arg;
  p->closed = 1;
  if (p->close_req != NULL && !p->env_gone && uvwn_js_alive(p->env)) {
    napi_handle_scope hs;
    napi_value req;
    napi_open_handle_scope(p->env, &hs);
    if (napi_get_reference_value(p->env, p->close_req, &req) == napi_ok)
      uvwn_call_hook(p->env, p->close_async, uvwn_env(p->env)->on_closed, 1, &req);
    napi_close_handle_scope(p->env, hs);
    napi_async_destroy(p->env, p->close_async);
    napi_delete_reference(p->env, p->close_req);
  }
  p->close_req = NULL;
  if (p->collected) peer_free(p);
}

static void peer_start_close(peer_t *p) {
  p->closing = 1;
  if (p->conn) uvw_conn_close(p->conn, peer_closed, p);
  else uvw_pool_close(p->pool, peer_closed, p);
}

/* Env teardown: close what JS left open (its callbacks reach JS no more);
 * Node runs the external's finalizer after the cleanup hooks, and that
 * frees the peer (or leaves it to the close callback). */
static void peer_cleanup(void *arg) {
  peer_t *p = arg;
  p->env_gone = 1;
  if (!p->closing) peer_start_close(p);
}

static void peer_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  peer_t *p = data;
  if (!p->env_gone) napi_remove_env_cleanup_hook(env, peer_cleanup, p);
  p->collected = 1;
  if (!p->closing) peer_start_close(p);
  else if (p->closed) peer_free(p);
}

static peer_t *peer_of(napi_env env, napi_value v) {
  peer_t *p = NULL;
  if (napi_get_value_external(env, v, (void **)&p) != napi_ok || p == NULL)
    napi_throw_type_error(env, "UVW_EINVAL", "uvwool: not a connection handle");
  return p;
}

int uvwn_get_utf8(napi_env env, napi_value v, char **out) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || (*out = malloc(len + 1)) == NULL) return -1;
  return napi_get_value_string_utf8(env, v, *out, len + 1, &len) == napi_ok ? 0 : (free(*out), -1);
}

static napi_value peer_external(napi_env env, peer_t *p) {
  napi_value out;
  p->env = env;
  if (napi_create_external(env, p, peer_finalize, NULL, &out) != napi_ok) {
    peer_start_close(p);
    p->collected = 1;
    return NULL;
  }
  napi_add_env_cleanup_hook(env, peer_cleanup, p);
  return out;
}

/* connOpen(address, timeoutMs) -> handle; pool(addresses, timeoutMs) -> handle. */
static napi_value conn_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uv_loop_t *loop;
  int64_t timeout;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_uv_event_loop(env, &loop));
  CHECK(napi_get_value_int64(env, argv[1], &timeout));
  peer_t *p = calloc(1, sizeof *p);
  if (p == NULL || uvwn_get_utf8(env, argv[0], &p->address) < 0) {
    free(p);
    return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  }
  if (uvw_conn_open(loop, p->address, &p->conn) < 0) {
    peer_free(p);
    return uvwn_throw_last(env);
  }
  uvw_conn_set_dispatch_timeout(p->conn, (uint64_t)timeout);
  return peer_external(env, p);
}

static napi_value pool_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], item;
  uv_loop_t *loop;
  int64_t timeout;
  uint32_t n;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_uv_event_loop(env, &loop));
  CHECK(napi_get_value_int64(env, argv[1], &timeout));
  CHECK(napi_get_array_length(env, argv[0], &n));
  char **addresses = calloc(n ? n : 1, sizeof *addresses);
  peer_t *p = calloc(1, sizeof *p);
  int rc = addresses && p ? 0 : -1;
  for (uint32_t i = 0; rc == 0 && i < n; i++)
    rc = napi_get_element(env, argv[0], i, &item) == napi_ok ? uvwn_get_utf8(env, item, &addresses[i]) : -1;
  if (rc == 0 && (p->address = strdup(n ? addresses[0] : "")) == NULL) rc = -1;
  if (rc < 0) {
    if (p) peer_free(p);
    p = NULL;
    uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  } else if (uvw_pool_open(loop, (const char *const *)addresses, n, &p->pool) < 0) {
    peer_free(p);
    p = NULL;
    uvwn_throw_last(env);
  }
  for (uint32_t i = 0; addresses && i < n; i++) free(addresses[i]);
  free(addresses);
  if (p == NULL) return NULL;
  uvw_pool_set_dispatch_timeout(p->pool, (uint64_t)timeout);
  return peer_external(env, p);
}

/* close(handle, req): on_closed(req) once every dispatch was answered. */
static napi_value peer_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  peer_t *p = peer_of(env, argv[0]);
  if (p == NULL) return NULL;
  if (p->closing) return uvwn_fail(env, UVW_EINVAL, "uvwool: the connection to %s is already closed", p->address);
  CHECK(napi_create_string_utf8(env, "uvwool.close", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &p->close_async));
  if (napi_create_reference(env, argv[1], 1, &p->close_req) != napi_ok) {
    napi_async_destroy(env, p->close_async);
    return NULL;
  }
  peer_start_close(p);
  return NULL;
}

/* isDead(handle): the connection was lost (a pool: never, it reconnects). */
static napi_value peer_is_dead(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  peer_t *p = peer_of(env, arg);
  if (p == NULL) return NULL;
  CHECK(napi_get_boolean(env, p->closing || (p->conn && uvw_conn_is_dead(p->conn)), &out));
  return out;
}

/* setRef(handle, ref): whether the idle peer keeps Node's loop alive (a
 * reply awaited always does). A closed peer: nothing to hold, a no-op. */
static napi_value peer_set_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool ref;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  peer_t *p = peer_of(env, argv[0]);
  if (p == NULL) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &ref));
  if (p->closing) return NULL;
  if (p->conn) uvw_conn_set_ref(p->conn, ref);
  else uvw_pool_set_ref(p->pool, ref);
  return NULL;
}

uvw_conn_t *uvwn_peer_conn(napi_env env, napi_value handle) {
  peer_t *p = peer_of(env, handle);
  if (p == NULL) return NULL;
  if (p->closing) return uvwn_fail(env, UVW_ECONNRESET, "uvwool: the connection to %s is closed", p->address), NULL;
  uvw_conn_t *c = p->conn ? p->conn : uvw_pool_next(p->pool);
  if (c == NULL) uvwn_throw_last(env);
  return c;
}

int uvwn_peer_init(napi_env env, napi_value exports) {
  static const uvwn_fn_t fns[] = {
      {"connOpen", conn_open}, {"poolOpen", pool_open}, {"peerClose", peer_close}, {"peerIsDead", peer_is_dead},
      {"peerSetRef", peer_set_ref}};
  return uvwn_export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
