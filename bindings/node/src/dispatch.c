/* Dispatch from JavaScript: connections and pools to uvwool-worker
 * processes, one-shot dispatches and streams (docs/node.md, "Dispatch").
 * lib/dispatch.js drives these; each step runs in a C copy of the mirror of
 * the JS state current at the call, carrying the JS chain id, and its reply
 * reaches JS through napi_make_callback with a copy of the merged C context,
 * which lib/dispatch.js reads back into the awaiting JS state. */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uvwool/dispatch.h>

#include "context.h" /* the core's context layout: the chain id of a private copy */
#include "convert.h"
#include "env.h"
#include "error.h" /* the core's detail-record helpers */
#include "errors_js.h"

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) return NULL;                                                                                \
  } while (0)

/* A connection of its own or a pool, as a JS Connection or Pool holds it. */
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

/* An open stream, as a JS Stream holds it. */
typedef struct stream_s {
  uvw_dispatch_t *d;
  int closed; /* uvw_dispatch_close was called: d is not ours any more */
} stream_t;

/* One pending reply: a one-shot dispatch or a stream step. */
typedef struct step_s {
  napi_env env;
  napi_ref req; /* the JS request (lib/dispatch.js), kept alive until the reply */
  napi_async_context async;
} step_t;

static napi_value fail(napi_env env, int code, const char *fmt, const char *what) {
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
static void call_hook(napi_env env, napi_async_context async, napi_ref slot, size_t argc, napi_value *argv) {
  napi_value fn, recv, res, exc;
  bool pending = false;
  if (napi_get_reference_value(env, slot, &fn) == napi_ok && napi_get_global(env, &recv) == napi_ok)
    napi_make_callback(env, async, recv, fn, argc, argv, &res);
  napi_is_exception_pending(env, &pending);
  if (pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
}

static int js_alive(napi_env env) {
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
  if (p->close_req != NULL && !p->env_gone && js_alive(p->env)) {
    napi_handle_scope hs;
    napi_value req;
    napi_open_handle_scope(p->env, &hs);
    if (napi_get_reference_value(p->env, p->close_req, &req) == napi_ok)
      call_hook(p->env, p->close_async, uvwn_env(p->env)->on_closed, 1, &req);
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

static int get_utf8(napi_env env, napi_value v, char **out) {
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
  if (p == NULL || get_utf8(env, argv[0], &p->address) < 0) {
    free(p);
    return fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
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
    rc = napi_get_element(env, argv[0], i, &item) == napi_ok ? get_utf8(env, item, &addresses[i]) : -1;
  if (rc == 0 && (p->address = strdup(n ? addresses[0] : "")) == NULL) rc = -1;
  if (rc < 0) {
    if (p) peer_free(p);
    p = NULL;
    fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
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
  if (p->closing) return fail(env, UVW_EINVAL, "uvwool: the connection to %s is already closed", p->address);
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

/* ---- steps ------------------------------------------------------------------- */

static void step_free(step_t *st) {
  if (js_alive(st->env)) {
    napi_async_destroy(st->env, st->async);
    napi_delete_reference(st->env, st->req);
  }
  free(st);
}

static step_t *step_new(napi_env env, napi_value req) {
  napi_value name;
  step_t *st = calloc(1, sizeof *st);
  if (st == NULL) return fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory"), NULL;
  st->env = env;
  if (napi_create_string_utf8(env, "uvwool.dispatch", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &st->async) != napi_ok) {
    free(st);
    return NULL;
  }
  if (napi_create_reference(env, req, 1, &st->req) != napi_ok) {
    napi_async_destroy(env, st->async);
    free(st);
    return NULL;
  }
  return st;
}

/* The reply's payload: its value, or the error (status != 0); a value JS
 * cannot take (a conversion failure) comes back as that exception. */
static napi_value reply_payload(napi_env env, const uvw_reply_t *reply) {
  napi_value out = NULL, exc;
  bool pending = false;
  if (reply->status == 0) {
    if (reply->value == NULL) napi_get_null(env, &out);
    else out = uvwn_from_value(env, reply->value);
  } else if (reply->error != NULL) {
    out = uvwn_error_value(env, reply->error, reply->status);
  } else {
    napi_value msg;
    napi_create_string_utf8(env, uvw_err_name(reply->status), NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &out);
  }
  napi_is_exception_pending(env, &pending);
  if (pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok) out = exc;
  return out;
}

/* on_reply(req, status, payload, merged context | undefined, done). The
 * merged context is there when the worker's manifest was merged: a Result,
 * and an Exception (what the routine changed before raising comes back). */
static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *reply, void *arg) {
  (void)d;
  step_t *st = arg;
  napi_env env = st->env;
  if (!js_alive(env)) {
    step_free(st);
    return;
  }
  napi_handle_scope hs;
  napi_value argv[5];
  napi_open_handle_scope(env, &hs);
  uvw_context_t *merged = NULL;
  if (reply->status == 0 || reply->status == UVW_EREMOTE) merged = uvw_context_copy_current();
  int have_ctx = merged == NULL ? napi_get_undefined(env, &argv[3]) == napi_ok
                                : (argv[3] = uvwn_context_external(env, merged)) != NULL;
  if (have_ctx &&
      napi_get_reference_value(env, st->req, &argv[0]) == napi_ok &&
      napi_create_string_utf8(env, reply->status ? uvw_err_name(reply->status) : "", NAPI_AUTO_LENGTH, &argv[1]) ==
          napi_ok &&
      (argv[2] = reply_payload(env, reply)) != NULL && napi_get_boolean(env, reply->done != 0, &argv[4]) == napi_ok)
    call_hook(env, st->async, uvwn_env(env)->on_reply, 5, argv);
  napi_close_handle_scope(env, hs);
  step_free(st);
}

/* The values of a JS array, as new uvw values (*n of them). */
static uvw_value_t **values_of(napi_env env, napi_value arr, uint32_t *n) {
  napi_value item;
  if (napi_get_array_length(env, arr, n) != napi_ok) return NULL;
  uvw_value_t **out = calloc(*n ? *n : 1, sizeof *out);
  if (out == NULL) return fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory"), NULL;
  for (uint32_t i = 0; i < *n; i++) {
    if (napi_get_element(env, arr, i, &item) != napi_ok || (out[i] = uvwn_to_value(env, item)) == NULL) {
      for (uint32_t j = 0; j < i; j++) uvw_value_unref(out[j]);
      free(out);
      return NULL;
    }
  }
  return out;
}

static void values_free(uvw_value_t **v, uint32_t n) {
  for (uint32_t i = 0; v && i < n; i++) uvw_value_unref(v[i]);
  free(v);
}

/* Gives a private copy (not entered, reachable from nowhere else) the JS
 * chain's id, so the worker files the dispatch under the chain JavaScript
 * reports (chainId()), and every step of a stream under the same one. */
static int adopt_chain_id(uvw_context_t *ctx, const char *hex) {
  if (ctx->chain == NULL || strlen(hex) != 32) return 0;
  uvw__chain_t *c = uvw__chain_clone(ctx->chain);
  if (c == NULL) return UVW_ENOMEM;
  for (int i = 0; i < 16; i++) {
    unsigned byte;
    sscanf(hex + 2 * i, "%2x", &byte);
    c->id[i] = (uint8_t)byte;
  }
  uvw__chain_t *old = ctx->chain;
  ctx->chain = c;
  uvw__chain_unref(old);
  return 0;
}

/* Enters a copy of `mirror` carrying the JS chain id `chain` (a string, or
 * null when the JS state is unarmed). The copy in *out: exit and unref it. */
static int enter_state(napi_env env, napi_value mirror, napi_value chain, uvw_context_t **out) {
  uvw_context_t *m;
  napi_valuetype t;
  char hex[40];
  size_t len;
  if (napi_get_value_external(env, mirror, (void **)&m) != napi_ok) return UVW_EINVAL;
  uvw_context_t *ctx = uvw_context_copy(m);
  if (ctx == NULL) return UVW_ENOMEM;
  int rc = 0;
  if (napi_typeof(env, chain, &t) == napi_ok && t == napi_string &&
      napi_get_value_string_utf8(env, chain, hex, sizeof hex, &len) == napi_ok)
    rc = adopt_chain_id(ctx, hex);
  if (rc == 0) rc = uvw_context_enter(ctx);
  if (rc < 0) uvw_context_unref(ctx);
  else *out = ctx;
  return rc;
}

static void leave_state(uvw_context_t *ctx) {
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
}

static uvw_conn_t *peer_conn(napi_env env, peer_t *p) {
  if (p->closing) return fail(env, UVW_ECONNRESET, "uvwool: the connection to %s is closed", p->address), NULL;
  uvw_conn_t *c = p->conn ? p->conn : uvw_pool_next(p->pool);
  if (c == NULL) uvwn_throw_last(env);
  return c;
}

/* dispatch(handle, mirror, chainId, routine, args, req): on_reply(req, ...)
 * once, from the loop. Throws when nothing was sent. */
static napi_value dispatch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  char *routine = NULL;
  uint32_t n = 0;
  uvw_context_t *ctx;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  peer_t *p = peer_of(env, argv[0]);
  uvw_conn_t *conn = p ? peer_conn(env, p) : NULL;
  if (conn == NULL) return NULL;
  if (get_utf8(env, argv[3], &routine) < 0) return fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  uvw_value_t **args = values_of(env, argv[4], &n);
  step_t *st = args ? step_new(env, argv[5]) : NULL;
  int rc = st ? enter_state(env, argv[1], argv[2], &ctx) : -1;
  if (rc == 0) {
    rc = uvw_conn_dispatch(conn, routine, args, n, NULL, on_reply, st, NULL);
    leave_state(ctx);
  }
  free(routine);
  values_free(args, n);
  if (rc == 0) return NULL;
  if (st) step_free(st);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  return pending ? NULL : uvwn_throw_last(env);
}

/* ---- streams ----------------------------------------------------------------- */

static void stream_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  stream_t *s = data;
  if (!s->closed) uvw_dispatch_close(s->d);
  free(s);
}

/* streamOpen(handle, routine, args) -> stream handle (the Task is sent). */
static napi_value stream_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  char *routine = NULL;
  uint32_t n = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  peer_t *p = peer_of(env, argv[0]);
  uvw_conn_t *conn = p ? peer_conn(env, p) : NULL;
  if (conn == NULL) return NULL;
  if (get_utf8(env, argv[1], &routine) < 0) return fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  uvw_value_t **args = values_of(env, argv[2], &n);
  stream_t *s = args ? calloc(1, sizeof *s) : NULL;
  int rc = s ? uvw_conn_dispatch_stream(conn, routine, args, n, NULL, &s->d) : -1;
  free(routine);
  values_free(args, n);
  if (rc < 0) {
    free(s);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    return pending ? NULL : uvwn_throw_last(env);
  }
  if (napi_create_external(env, s, stream_finalize, NULL, &out) != napi_ok) {
    uvw_dispatch_close(s->d);
    free(s);
    return NULL;
  }
  return out;
}

/* A JS error as a uvw error to raise in the routine: its name and message. */
static uvw_error_t *error_of(napi_env env, napi_value v) {
  napi_value name, message;
  char *n = NULL, *m = NULL;
  if (napi_get_named_property(env, v, "name", &name) != napi_ok || napi_coerce_to_string(env, name, &name) != napi_ok ||
      napi_get_named_property(env, v, "message", &message) != napi_ok ||
      napi_coerce_to_string(env, message, &message) != napi_ok || get_utf8(env, name, &n) < 0 ||
      get_utf8(env, message, &m) < 0) {
    free(n);
    return NULL;
  }
  uvw_error_t *e = uvw_error_new(n, 0, m);
  free(n);
  free(m);
  return e;
}

/* streamStep(stream, kind, mirror, chainId, value, req): kind 0 next,
 * 1 send(value), 2 throw(value: an Error). on_reply(req, ...) once. */
static napi_value stream_step(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  stream_t *s;
  int32_t kind;
  uvw_context_t *ctx;
  uvw_value_t *value = NULL;
  uvw_error_t *error = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_external(env, argv[0], (void **)&s));
  CHECK(napi_get_value_int32(env, argv[1], &kind));
  if (s->closed) return fail(env, UVW_EINVAL, "%s", "uvwool: the stream is closed");
  if (kind == 1 && (value = uvwn_to_value(env, argv[4])) == NULL) return NULL;
  if (kind == 2 && (error = error_of(env, argv[4])) == NULL) return NULL;
  step_t *st = step_new(env, argv[5]);
  int rc = st ? enter_state(env, argv[2], argv[3], &ctx) : -1;
  if (rc == 0) {
    rc = kind == 0 ? uvw_dispatch_next(s->d, on_reply, st)
         : kind == 1 ? uvw_dispatch_send(s->d, value, on_reply, st)
                     : uvw_dispatch_throw(s->d, error, on_reply, st);
    leave_state(ctx);
  }
  uvw_value_unref(value);
  uvw_error_unref(error);
  if (rc == 0) return NULL;
  if (st) step_free(st);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  return pending ? NULL : uvwn_throw_last(env);
}

/* streamClose(stream): ends it; a pending step is answered UVW_ECANCELED
 * from the loop. A second call is a no-op. */
static napi_value stream_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  stream_t *s;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  CHECK(napi_get_value_external(env, arg, (void **)&s));
  if (!s->closed) {
    s->closed = 1;
    uvw_dispatch_close(s->d);
  }
  return NULL;
}

/* ---- reading a merged context back --------------------------------------------- */

/* readBack(context, handles) -> [chainId | null, value | undefined, ...]:
 * what the merged context binds for each JS variable. */
static napi_value read_back(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out, item;
  uvw_context_t *ctx;
  uvw_var_t *var;
  uint32_t n;
  char id[33];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_external(env, argv[0], (void **)&ctx));
  CHECK(napi_get_array_length(env, argv[1], &n));
  CHECK(napi_create_array_with_length(env, n + 1, &out));
  if (uvw_context_chain_id(ctx, id) == 0) CHECK(napi_create_string_utf8(env, id, 32, &item));
  else CHECK(napi_get_null(env, &item));
  CHECK(napi_set_element(env, out, 0, item));
  for (uint32_t i = 0; i < n; i++) {
    CHECK(napi_get_element(env, argv[1], i, &item));
    CHECK(napi_get_value_external(env, item, (void **)&var));
    uvw_value_t *v = uvw_context_lookup(ctx, var);
    if (v == NULL) continue;
    napi_value js = uvwn_from_value(env, v);
    if (js == NULL) return NULL;
    CHECK(napi_set_element(env, out, i + 1, js));
  }
  return out;
}

static napi_value set_reply_hooks(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uvwn_env_t *e = uvwn_env(env);
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (e->on_reply) napi_delete_reference(env, e->on_reply);
  if (e->on_closed) napi_delete_reference(env, e->on_closed);
  e->on_reply = e->on_closed = NULL;
  CHECK(napi_create_reference(env, argv[0], 1, &e->on_reply));
  CHECK(napi_create_reference(env, argv[1], 1, &e->on_closed));
  return NULL;
}

int uvwn_dispatch_init(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"setReplyHooks", set_reply_hooks}, {"connOpen", conn_open},       {"poolOpen", pool_open},
      {"peerClose", peer_close},          {"peerIsDead", peer_is_dead},  {"dispatch", dispatch},
      {"streamOpen", stream_open},        {"streamStep", stream_step},   {"streamClose", stream_close},
      {"readBack", read_back},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return -1;
  }
  return 0;
}
