/* Dispatch from JavaScript: one-shot dispatches and streams to
 * uvwool-worker processes (docs/node.md, "Dispatch"; peer.c holds the
 * connections and pools).
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
#include "dispatch_js.h"
#include "env.h"
#include "errors_js.h"

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

/* ---- steps ------------------------------------------------------------------- */

static void step_free(step_t *st) {
  if (uvwn_js_alive(st->env)) {
    napi_async_destroy(st->env, st->async);
    napi_delete_reference(st->env, st->req);
  }
  free(st);
}

static step_t *step_new(napi_env env, napi_value req) {
  napi_value name;
  step_t *st = calloc(1, sizeof *st);
  if (st == NULL) return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory"), NULL;
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
  if (!uvwn_js_alive(env)) {
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
    uvwn_call_hook(env, st->async, uvwn_env(env)->on_reply, 5, argv);
  napi_close_handle_scope(env, hs);
  step_free(st);
}

/* Nothing was sent: the step is dropped and the failure thrown (the
 * exception already pending, or the call's uvwool error). */
static napi_value step_failed(napi_env env, step_t *st) {
  bool pending = false;
  if (st) step_free(st);
  napi_is_exception_pending(env, &pending);
  return pending ? NULL : uvwn_throw_last(env);
}

/* The data of the external that is a native function's only argument. */
static void *external_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok ||
      napi_get_value_external(env, arg, &data) != napi_ok)
    return NULL;
  return data;
}

/* The values of a JS array, as new uvw values (*n of them). */
static uvw_value_t **values_of(napi_env env, napi_value arr, uint32_t *n) {
  napi_value item;
  if (napi_get_array_length(env, arr, n) != napi_ok) return NULL;
  uvw_value_t **out = calloc(*n ? *n : 1, sizeof *out);
  if (out == NULL) return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory"), NULL;
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

/* dispatch(handle, mirror, chainId, routine, args, req, timeoutMs) ->
 * dispatch handle (for dispatchCancel while the reply is pending);
 * on_reply(req, ...) once, from the loop. Throws when nothing was sent. */
static napi_value dispatch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], out = NULL;
  char *routine = NULL;
  uint32_t n = 0;
  int64_t timeout;
  uvw_context_t *ctx;
  uvw_dispatch_t *d = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int64(env, argv[6], &timeout));
  uvw_conn_t *conn = uvwn_peer_conn(env, argv[0]);
  if (conn == NULL) return NULL;
  if (uvwn_get_utf8(env, argv[3], &routine) < 0) return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  uvw_value_t **args = values_of(env, argv[4], &n);
  step_t *st = args ? step_new(env, argv[5]) : NULL;
  int rc = st ? enter_state(env, argv[1], argv[2], &ctx) : -1;
  if (rc == 0) {
    uvw_dispatch_opts_t opts = {.dispatch_timeout_ms = timeout > 0 ? (uint64_t)timeout : 0};
    rc = uvw_conn_dispatch(conn, routine, args, n, &opts, on_reply, st, &d);
    leave_state(ctx);
  }
  free(routine);
  values_free(args, n);
  /* No finalizer: d is the dispatch layer's, valid until its callback
   * returned, and lib/dispatch.js cancels only before that. */
  if (rc == 0) return napi_create_external(env, d, NULL, NULL, &out) == napi_ok ? out : NULL;
  return step_failed(env, st);
}

/* dispatchCancel(dispatch handle): the reply is decided now (UVW_ECANCELED,
 * the worker told); its callback runs from the loop later. A dispatch
 * already decided is left alone. */
static napi_value dispatch_cancel(napi_env env, napi_callback_info info) {
  uvw_dispatch_t *d = external_arg(env, info);
  if (d != NULL) uvw_dispatch_cancel(d);
  return NULL;
}

/* ---- streams ----------------------------------------------------------------- */

static void stream_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  stream_t *s = data;
  if (!s->closed) uvw_dispatch_close(s->d);
  free(s);
}

/* streamOpen(handle, routine, args, timeoutMs) -> stream handle (the Task
 * is sent; timeoutMs 0: the connection's handshake bound). */
static napi_value stream_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  char *routine = NULL;
  uint32_t n = 0;
  int64_t timeout;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int64(env, argv[3], &timeout));
  uvw_conn_t *conn = uvwn_peer_conn(env, argv[0]);
  if (conn == NULL) return NULL;
  if (uvwn_get_utf8(env, argv[1], &routine) < 0) return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  uvw_value_t **args = values_of(env, argv[2], &n);
  stream_t *s = args ? calloc(1, sizeof *s) : NULL;
  uvw_dispatch_opts_t opts = {.dispatch_timeout_ms = timeout > 0 ? (uint64_t)timeout : 0};
  int rc = s ? uvw_conn_dispatch_stream(conn, routine, args, n, &opts, &s->d) : -1;
  free(routine);
  values_free(args, n);
  if (rc < 0) {
    free(s);
    return step_failed(env, NULL);
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
      napi_coerce_to_string(env, message, &message) != napi_ok || uvwn_get_utf8(env, name, &n) < 0 ||
      uvwn_get_utf8(env, message, &m) < 0) {
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
  if (s->closed) return uvwn_fail(env, UVW_EINVAL, "%s", "uvwool: the stream is closed");
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
  return step_failed(env, st);
}

/* streamClose(stream): ends it; a pending step is answered UVW_ECANCELED
 * from the loop. A second call is a no-op. */
static napi_value stream_close(napi_env env, napi_callback_info info) {
  stream_t *s = external_arg(env, info);
  if (s != NULL && !s->closed) {
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
  static const uvwn_fn_t fns[] = {
      {"setReplyHooks", set_reply_hooks}, {"dispatch", dispatch},         {"dispatchCancel", dispatch_cancel},
      {"streamOpen", stream_open},        {"streamStep", stream_step},   {"streamClose", stream_close},
      {"readBack", read_back},
  };
  if (uvwn_peer_init(env, exports) < 0) return -1;
  return uvwn_export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
