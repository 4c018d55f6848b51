/* Hosting routines from JavaScript (docs/node.md, "Hosting routines"): a
 * uvw_worker_t on Node's own loop whose routines are JS functions and
 * async generators. The protocol, limits and options are the C worker's;
 * this file carries each step to lib/worker.js and the answers back.
 *
 * A step reaches JS through napi_make_callback from the loop, with a copy
 * of the dispatch's context (what lib/worker.js reads the routine's State
 * from). The call record keeps a reference to that context itself, the
 * call's "holder": every set and reset made in the call's JS Context is
 * also made there (callSet, callReset), and the answer is encoded from
 * it, so the caller gets what the C worker would send for a C routine
 * doing the same writes (pending resets, stubs passed through, the chain).
 *
 * Lifetimes: a worker record lives until its close callback ran and its
 * JS handle was collected; while it listens a strong reference keeps the
 * JS Worker (a listening worker is never collected). A call record is
 * shared by the core (until the call ends) and its JS handle (until
 * collected): the last one frees it. */
#include <node_api.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <uvwool/dispatch.h>

#include "context.h" /* the core's context layout: a token's context identity */
#include "convert.h"
#include "dispatch_js.h"
#include "env.h"
#include "errors_js.h"

typedef struct nworker_s {
  napi_env env;
  uvw_worker_t *w;
  napi_ref self;   /* the JS Worker, strong while listening; else NULL */
  napi_ref closer; /* what on_worker_closed settles, or NULL */
  napi_async_context async;
  size_t naddresses;
  int closing, closed, collected, env_gone;
  struct route_s *routes; /* freed at close */
} nworker_t;

/* One registered routine: its JS record (lib/worker.js). */
typedef struct route_s {
  nworker_t *wk;
  napi_ref js;
  struct route_s *next;
} route_t;

typedef struct ncall_s {
  uvw_call_t *call;     /* NULL once the call ended */
  nworker_t *wk;        /* alive while the call can be cancelled (before the worker's close ended) */
  uvw_context_t *holder; /* the routine's context: its writes, its answers */
  napi_env env;
  napi_ref js;          /* the JS call record, set at the first step */
  int holders;          /* the core's call and the JS handle */
} ncall_t;

/* ---- calls ---------------------------------------------------------------------- */

static void ncall_release(ncall_t *nc) {
  if (--nc->holders > 0) return;
  uvw_context_unref(nc->holder);
  free(nc);
}

static void call_ended(void *data) {
  ncall_t *nc = data;
  nc->call = NULL;
  if (nc->js != NULL && uvwn_js_alive(nc->env)) napi_delete_reference(nc->env, nc->js);
  nc->js = NULL;
  ncall_release(nc);
}

static void call_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  ncall_release(data);
}

static ncall_t *ncall_of(napi_env env, napi_value v) {
  ncall_t *nc = NULL;
  if (napi_get_value_external(env, v, (void **)&nc) != napi_ok || nc == NULL)
    napi_throw_type_error(env, "UVW_EINVAL", "uvwool: not a routine call handle");
  return nc;
}

/* Makes the holder current for one write or answer; *entered says whether
 * to leave it after (it is current already while the step's callback runs). */
static int holder_enter(ncall_t *nc, int *entered) {
  *entered = 0;
  if (uvw_context_current() == nc->holder) return 0;
  int rc = uvw_context_enter(nc->holder);
  *entered = rc == 0;
  return rc;
}

static void holder_leave(ncall_t *nc, int entered) {
  if (entered) uvw_context_exit(nc->holder);
}

static void token_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  uvw_token_free(data);
}

/* callSet(call, var, value) -> C token | null (the call is over: JS only). */
static napi_value call_set(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  uvw_var_t *var;
  uvw_token_t *token = NULL;
  int entered;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ncall_t *nc = ncall_of(env, argv[0]);
  if (nc == NULL) return NULL;
  CHECK(napi_get_value_external(env, argv[1], (void **)&var));
  if (nc->call == NULL) return napi_get_null(env, &out) == napi_ok ? out : NULL;
  uvw_value_t *value = uvwn_to_value(env, argv[2]);
  if (value == NULL) return NULL;
  int rc = holder_enter(nc, &entered);
  if (rc == 0) rc = uvw_set(var, value, &token);
  holder_leave(nc, entered);
  uvw_value_unref(value);
  if (rc < 0) return uvwn_throw_last(env);
  if (napi_create_external(env, token, token_finalize, NULL, &out) != napi_ok) {
    uvw_token_free(token);
    return NULL;
  }
  return out;
}

/* callReset(call, var, token): the reset in the holder (nothing once over). */
static napi_value call_reset(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uvw_var_t *var;
  uvw_token_t *token;
  int entered;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ncall_t *nc = ncall_of(env, argv[0]);
  if (nc == NULL) return NULL;
  CHECK(napi_get_value_external(env, argv[1], (void **)&var));
  CHECK(napi_get_value_external(env, argv[2], (void **)&token));
  if (nc->call == NULL) return NULL;
  int rc = holder_enter(nc, &entered);
  if (rc == 0) rc = uvw_reset(var, token);
  holder_leave(nc, entered);
  return rc < 0 ? uvwn_throw_last(env) : NULL;
}

/* callContext(call) -> a copy of the holder: what a dispatch made by the
 * routine sends (its stubs and pending resets included). */
static napi_value call_context(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  ncall_t *nc = ncall_of(env, arg);
  if (nc == NULL) return NULL;
  uvw_context_t *copy = uvw_context_copy(nc->holder);
  return copy ? uvwn_context_external(env, copy) : uvwn_throw_last(env);
}

/* callAdopt(call, merged): the reply of a dispatch the routine made
 * becomes its context (the other worker's changes are the routine's). The
 * copy takes the holder's identity, so a token the routine set before the
 * dispatch still resets after it: it is the same routine context, moved on. */
static napi_value call_adopt(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uvw_context_t *merged;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ncall_t *nc = ncall_of(env, argv[0]);
  if (nc == NULL) return NULL;
  CHECK(napi_get_value_external(env, argv[1], (void **)&merged));
  if (nc->call == NULL) return NULL;
  uvw_context_t *copy = uvw_context_copy(merged);
  if (copy == NULL) return uvwn_throw_last(env);
  copy->serial = nc->holder->serial;
  uvw_context_unref(nc->holder);
  nc->holder = copy;
  return NULL;
}

/* The uvwool code named `name` ("UVW_ECONTENTION"), or 0. */
static int code_named(const char *name) {
#define UVWN_CODE(n, v, m)                                                                                             \
  if (strcmp(name, "UVW_" #n) == 0) return v;
  UVW_ERRNO_MAP(UVWN_CODE)
#undef UVWN_CODE
  return 0;
}

/* The error a JS description makes: [type, code name | null, message, name, value, ...]. */
static uvw_error_t *error_described(napi_env env, napi_value desc) {
  napi_value item;
  uint32_t n;
  char *parts[3] = {NULL, NULL, NULL};
  uvw_error_t *e = NULL;
  if (napi_get_array_length(env, desc, &n) != napi_ok || n < 3) return NULL;
  for (uint32_t i = 0; i < 3; i++) {
    napi_valuetype t;
    if (napi_get_element(env, desc, i, &item) != napi_ok || napi_typeof(env, item, &t) != napi_ok) goto done;
    if (t == napi_string && uvwn_get_utf8(env, item, &parts[i]) < 0) goto done;
  }
  e = uvw_error_new(parts[0], parts[1] ? code_named(parts[1]) : 0, parts[2] ? parts[2] : "");
  for (uint32_t i = 3; e != NULL && i + 1 < n; i += 2) {
    char *name = NULL, *value = NULL;
    if (napi_get_element(env, desc, i, &item) == napi_ok && uvwn_get_utf8(env, item, &name) == 0 &&
        napi_get_element(env, desc, i + 1, &item) == napi_ok && uvwn_get_utf8(env, item, &value) == 0)
      uvw_error_add_field(e, name, value);
    free(name);
    free(value);
  }
done:
  for (int i = 0; i < 3; i++) free(parts[i]);
  return e;
}

/* callAnswer(call, kind, payload): kind 0 yield, 1 return (payload a wire
 * value), 2 raise (payload an error description). Made in the holder. A
 * call over (answered, cancelled) drops it. Throws what the core refused
 * (the caller then got that error instead, e.g. a guard trip). */
static napi_value call_answer(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t kind;
  int entered;
  uvw_value_t *value = NULL;
  uvw_error_t *error = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ncall_t *nc = ncall_of(env, argv[0]);
  if (nc == NULL) return NULL;
  CHECK(napi_get_value_int32(env, argv[1], &kind));
  if (nc->call == NULL) return NULL;
  if (kind == 2 && (error = error_described(env, argv[2])) == NULL)
    return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: the routine's error could not be built");
  if (kind != 2 && (value = uvwn_to_value(env, argv[2])) == NULL) return NULL;
  int rc = holder_enter(nc, &entered);
  if (rc == 0)
    rc = kind == 0 ? uvw_call_yield(nc->call, value) : kind == 1 ? uvw_call_return(nc->call, value)
                                                               : uvw_call_raise(nc->call, error);
  holder_leave(nc, entered);
  uvw_value_unref(value);
  uvw_error_unref(error);
  return rc < 0 ? uvwn_throw_last(env) : NULL;
}

/* ---- steps: from the C worker to lib/worker.js ------------------------------------ */

static napi_value step_payload(napi_env env, uvw_call_t *call) {
  napi_value out, item;
  const uvw_error_t *thrown;
  switch (uvw_call_step(call)) {
  case UVW_STEP_SEND:
    return uvwn_from_value(env, uvw_call_sent(call));
  case UVW_STEP_THROW:
    thrown = uvw_call_thrown(call);
    if (thrown != NULL) return uvwn_error_value(env, thrown, UVW_EREMOTE);
    CHECK(napi_create_string_utf8(env, "uvwool: the dispatch ended", NAPI_AUTO_LENGTH, &item));
    CHECK(napi_create_error(env, NULL, item, &out));
    return out;
  default: /* NEXT: the arguments (a later NEXT ignores them) */
    CHECK(napi_create_array_with_length(env, uvw_call_arg_count(call), &out));
    for (size_t i = 0; i < uvw_call_arg_count(call); i++) {
      if ((item = uvwn_from_value(env, uvw_call_arg(call, i))) == NULL) return NULL;
      CHECK(napi_set_element(env, out, (uint32_t)i, item));
    }
    return out;
  }
}

/* The first step makes the record (shared with the core through the call's
 * data) and its JS handle. */
static ncall_t *ncall_for(nworker_t *wk, uvw_call_t *call, napi_value *handle) {
  napi_env env = wk->env;
  ncall_t *nc = uvw_call_data(call);
  if (nc != NULL) {
    *handle = NULL;
    return nc;
  }
  if ((nc = calloc(1, sizeof *nc)) == NULL) return NULL;
  nc->call = call;
  nc->wk = wk;
  nc->env = env;
  nc->holders = 2;
  if (napi_create_external(env, nc, call_finalize, NULL, handle) != napi_ok) {
    free(nc);
    return NULL;
  }
  uvw_call_set_data(call, nc, call_ended);
  return nc;
}

static void refuse(uvw_call_t *call, const char *why) {
  uvw_error_t *e = uvw_error_new("WoolError", UVW_ECONNRESET, why);
  uvw_call_raise(call, e);
  uvw_error_unref(e);
}

static void on_cancel(uvw_call_t *call, void *arg);

/* onStep(route, call record | undefined, handle | undefined, step, payload,
 * context, dispatchTimeoutMs, timeoutSent, cancelled) -> the call record
 * (kept for later steps). `cancelled`: this step is the THROW of a
 * cancellation.
 * Runs in the dispatch's context: the holder is the current context. */
static void route_step(uvw_call_t *call, void *arg) {
  route_t *r = arg;
  nworker_t *wk = r->wk;
  napi_env env = wk->env;
  if (wk->env_gone || !uvwn_js_alive(env)) {
    refuse(call, "uvwool: the Node worker is closing");
    return;
  }
  napi_handle_scope hs;
  napi_value argv[9], fn, recv, record = NULL;
  uint64_t ms = 0;
  napi_open_handle_scope(env, &hs);
  ncall_t *nc = ncall_for(wk, call, &argv[2]);
  uvw_context_t *view = uvw_context_copy_current();
  /* The external owns the view from here, or freed it on failure. */
  int ok = nc != NULL && view != NULL && (argv[5] = uvwn_context_external(env, view)) != NULL;
  if (ok) {
    uvw_context_unref(nc->holder);
    nc->holder = uvw_context_ref(uvw_context_current());
    uvw_call_on_cancel(call, on_cancel, nc);
    int sent = uvw_call_dispatch_timeout(call, &ms);
    ok = napi_get_reference_value(env, r->js, &argv[0]) == napi_ok &&
         (nc->js ? napi_get_reference_value(env, nc->js, &argv[1]) : napi_get_undefined(env, &argv[1])) == napi_ok &&
         (argv[2] != NULL || napi_get_undefined(env, &argv[2]) == napi_ok) &&
         napi_create_int32(env, (int32_t)uvw_call_step(call), &argv[3]) == napi_ok &&
         (argv[4] = step_payload(env, call)) != NULL &&
         napi_create_double(env, (double)ms, &argv[6]) == napi_ok &&
         napi_get_boolean(env, sent != 0, &argv[7]) == napi_ok &&
         napi_get_boolean(env, uvw_call_cancelled(call) != 0, &argv[8]) == napi_ok &&
         napi_get_reference_value(env, uvwn_env(env)->on_step, &fn) == napi_ok && napi_get_global(env, &recv) == napi_ok;
  } else if (view != NULL && nc == NULL) {
    uvw_context_unref(view);
  }
  if (ok && napi_make_callback(env, wk->async, recv, fn, 9, argv, &record) == napi_ok && nc->js == NULL &&
      nc->call != NULL)
    napi_create_reference(env, record, 1, &nc->js);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, hs);
  if (!ok) refuse(call, "uvwool: the step could not reach JavaScript");
}

/* The caller cancelled or went away while a step runs: onCancel(record). */
static void on_cancel(uvw_call_t *call, void *arg) {
  ncall_t *nc = arg;
  napi_env env = nc->env;
  (void)call;
  if (nc->js == NULL || nc->wk->env_gone || !uvwn_js_alive(env)) return;
  napi_handle_scope hs;
  napi_value record;
  napi_open_handle_scope(env, &hs);
  if (napi_get_reference_value(env, nc->js, &record) == napi_ok)
    uvwn_call_hook(env, nc->wk->async, uvwn_env(env)->on_cancel, 1, &record);
  napi_close_handle_scope(env, hs);
}

/* ---- workers -------------------------------------------------------------------- */

static void worker_maybe_free(nworker_t *wk) {
  if (wk->closed && wk->collected) free(wk);
}

static nworker_t *nworker_of(napi_env env, napi_value v) {
  nworker_t *wk = NULL;
  if (napi_get_value_external(env, v, (void **)&wk) != napi_ok || wk == NULL) {
    napi_throw_type_error(env, "UVW_EINVAL", "uvwool: not a worker handle");
    return NULL;
  }
  if (wk->closing) return uvwn_fail(env, UVW_EINVAL, "%s", "uvwool: the worker is closed"), NULL;
  return wk;
}

static void routes_free(nworker_t *wk) {
  while (wk->routes) {
    route_t *r = wk->routes;
    wk->routes = r->next;
    if (!wk->env_gone && uvwn_js_alive(wk->env)) napi_delete_reference(wk->env, r->js);
    free(r);
  }
}

static void worker_closed(void *arg) {
  nworker_t *wk = arg;
  napi_env env = wk->env;
  wk->closed = 1;
  routes_free(wk);
  if (!wk->env_gone && uvwn_js_alive(env)) {
    napi_handle_scope hs;
    napi_value req;
    napi_open_handle_scope(env, &hs);
    if (wk->closer != NULL && napi_get_reference_value(env, wk->closer, &req) == napi_ok)
      uvwn_call_hook(env, wk->async, uvwn_env(env)->on_worker_closed, 1, &req);
    napi_close_handle_scope(env, hs);
    if (wk->closer) napi_delete_reference(env, wk->closer);
    if (wk->self) napi_delete_reference(env, wk->self);
    napi_async_destroy(env, wk->async);
  }
  wk->closer = wk->self = NULL;
  worker_maybe_free(wk);
}

static void worker_start_close(nworker_t *wk) {
  wk->closing = 1;
  uvw_worker_close(wk->w, worker_closed, wk);
}

/* Env teardown: close what JS left open; nothing reaches JS any more. */
static void worker_cleanup(void *arg) {
  nworker_t *wk = arg;
  wk->env_gone = 1;
  if (!wk->closing) worker_start_close(wk);
}

static void worker_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  nworker_t *wk = data;
  if (!wk->env_gone) napi_remove_env_cleanup_hook(env, worker_cleanup, wk);
  wk->collected = 1;
  if (!wk->closing) worker_start_close(wk);
  else worker_maybe_free(wk);
}

static void on_worker_error(uvw_worker_t *w, const uvw_error_t *error, void *arg) {
  (void)w;
  nworker_t *wk = arg;
  napi_env env = wk->env;
  if (wk->env_gone || !uvwn_js_alive(env) || wk->self == NULL) return;
  napi_handle_scope hs;
  napi_value argv[2];
  napi_open_handle_scope(env, &hs);
  if (napi_get_reference_value(env, wk->self, &argv[0]) == napi_ok &&
      (argv[1] = uvwn_error_value(env, error, uvw_error_code(error))) != NULL)
    uvwn_call_hook(env, wk->async, uvwn_env(env)->on_worker_error, 2, argv);
  napi_close_handle_scope(env, hs);
}

/* A caller hanging up mid-write is a write error, not the death of the
 * process (uvwool-worker ignores SIGPIPE too; Node already does, unless
 * the program installed a handler). */
static void ignore_sigpipe(void) {
  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
}

/* workerOpen() -> handle: a worker on Node's loop. */
static napi_value worker_open(napi_env env, napi_callback_info info) {
  (void)info;
  uv_loop_t *loop;
  napi_value out, name;
  CHECK(napi_get_uv_event_loop(env, &loop));
  ignore_sigpipe();
  nworker_t *wk = calloc(1, sizeof *wk);
  if (wk == NULL) return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  if (uvw_worker_open(loop, &wk->w) < 0) {
    free(wk);
    return uvwn_throw_last(env);
  }
  wk->env = env;
  if (napi_create_string_utf8(env, "uvwool.worker", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &wk->async) != napi_ok ||
      napi_create_external(env, wk, worker_finalize, NULL, &out) != napi_ok) {
    wk->collected = 1;
    worker_start_close(wk);
    return NULL;
  }
  uvw_worker_on_error(wk->w, on_worker_error, wk);
  napi_add_env_cleanup_hook(env, worker_cleanup, wk);
  return out;
}

/* workerRegister(handle, name, stream, route record). */
static napi_value worker_register(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char *name = NULL;
  bool stream;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nworker_t *wk = nworker_of(env, argv[0]);
  if (wk == NULL) return NULL;
  CHECK(napi_get_value_bool(env, argv[2], &stream));
  route_t *r = calloc(1, sizeof *r);
  if (r == NULL || uvwn_get_utf8(env, argv[1], &name) < 0) {
    free(r);
    return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  }
  r->wk = wk;
  /* Listed first: the core may call route_step as soon as it is registered. */
  int rc = napi_create_reference(env, argv[3], 1, &r->js) == napi_ok ? 0 : -1;
  if (rc == 0 && (rc = uvw_worker_register(wk->w, name, route_step, r, stream ? UVW_ROUTINE_STREAM : 0)) < 0)
    napi_delete_reference(env, r->js);
  free(name);
  if (rc < 0) {
    free(r);
    return rc == -1 ? NULL : uvwn_throw_last(env);
  }
  r->next = wk->routes;
  wk->routes = r;
  return NULL;
}

/* workerListen(handle, address, worker object) -> the address as bound. */
static napi_value worker_listen(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  char *address = NULL, bound[512];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nworker_t *wk = nworker_of(env, argv[0]);
  if (wk == NULL) return NULL;
  if (uvwn_get_utf8(env, argv[1], &address) < 0) return uvwn_fail(env, UVW_ENOMEM, "%s", "uvwool: out of memory");
  int rc = uvw_worker_listen(wk->w, address);
  free(address);
  if (rc == 0) rc = uvw_worker_address(wk->w, wk->naddresses++, bound, sizeof bound);
  if (rc < 0) return uvwn_throw_last(env);
  if (wk->self == NULL) CHECK(napi_create_reference(env, argv[2], 1, &wk->self));
  CHECK(napi_create_string_utf8(env, bound, NAPI_AUTO_LENGTH, &out));
  return out;
}

/* workerAddress(handle, i) -> the i-th address as bound. */
static napi_value worker_address(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  uint32_t i;
  char bound[512];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nworker_t *wk = nworker_of(env, argv[0]);
  if (wk == NULL) return NULL;
  CHECK(napi_get_value_uint32(env, argv[1], &i));
  if (uvw_worker_address(wk->w, i, bound, sizeof bound) < 0) return uvwn_throw_last(env);
  CHECK(napi_create_string_utf8(env, bound, NAPI_AUTO_LENGTH, &out));
  return out;
}

/* workerRef(handle, ref): whether the listeners keep Node's loop alive. */
static napi_value worker_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool ref;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nworker_t *wk = nworker_of(env, argv[0]);
  if (wk == NULL) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &ref));
  return uvw_worker_set_ref(wk->w, ref) < 0 ? uvwn_throw_last(env) : NULL;
}

#define LIMIT_FIELDS(X)                                                                                                \
  X(max_connections, "maxConnections") X(max_dispatches, "maxDispatches")                                              \
  X(max_inflight_bytes, "maxInflightBytes") X(max_stubs, "maxStubs") X(max_chains, "maxChains")                        \
  X(write_high_water, "writeHighWater") X(frame_timeout_ms, "frameTimeoutMs") X(idle_timeout_ms, "idleTimeoutMs")

#define STAT_FIELDS(X)                                                                                                 \
  X(connections, "connections") X(dispatches, "dispatches") X(inflight_bytes, "inflightBytes")                         \
  X(read_buffer_bytes, "readBufferBytes") X(write_queue_bytes, "writeQueueBytes") X(paused_peers, "pausedPeers")       \
  X(refused_connections, "refusedConnections") X(timed_out_peers, "timedOutPeers")                                     \
  X(max_call_chains, "maxCallChains")

static int put_number(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  return napi_create_double(env, v, &n) == napi_ok && napi_set_named_property(env, obj, name, n) == napi_ok ? 0 : -1;
}

/* workerSetLimits(handle, { maxConnections, ... }): lib/worker.js checked
 * every field is a non-negative safe integer (0 or absent: the default). */
static napi_value worker_set_limits(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], v;
  uvw_worker_limits_t l = {0};
  double d;
  bool has;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nworker_t *wk = nworker_of(env, argv[0]);
  if (wk == NULL) return NULL;
#define READ(f, js)                                                                                                    \
  CHECK(napi_has_named_property(env, argv[1], js, &has));                                                              \
  if (has) {                                                                                                           \
    CHECK(napi_get_named_property(env, argv[1], js, &v));                                                              \
    CHECK(napi_get_value_double(env, v, &d));                                                                          \
    l.f = (__typeof__(l.f))d;                                                                                          \
  }
  LIMIT_FIELDS(READ)
#undef READ
  return uvw_worker_set_limits(wk->w, &l) < 0 ? uvwn_throw_last(env) : NULL;
}

/* workerLimits(handle) -> the limits in force. */
static napi_value worker_limits(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out;
  uvw_worker_limits_t l;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  nworker_t *wk = nworker_of(env, arg);
  if (wk == NULL) return NULL;
  if (uvw_worker_get_limits(wk->w, &l) < 0) return uvwn_throw_last(env);
  CHECK(napi_create_object(env, &out));
#define PUT(f, js) if (put_number(env, out, js, (double)l.f) < 0) return NULL;
  LIMIT_FIELDS(PUT)
#undef PUT
  return out;
}

/* workerStats(handle) -> the counters. */
static napi_value worker_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out;
  uvw_worker_stats_t s;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  nworker_t *wk = nworker_of(env, arg);
  if (wk == NULL) return NULL;
  if (uvw_worker_stats(wk->w, &s) < 0) return uvwn_throw_last(env);
  CHECK(napi_create_object(env, &out));
#define PUT(f, js) if (put_number(env, out, js, (double)s.f) < 0) return NULL;
  STAT_FIELDS(PUT)
#undef PUT
  return out;
}

/* workerOption(handle, name, value): socketMode, socketGroup, allowUid,
 * allowGid, allowRemote, dispatchTimeoutMs; lib/worker.js checked the
 * types and ranges, the core checks the rest. */
static napi_value worker_option(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char name[32];
  size_t len;
  double v = 0;
  bool flag = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nworker_t *wk = nworker_of(env, argv[0]);
  if (wk == NULL) return NULL;
  CHECK(napi_get_value_string_utf8(env, argv[1], name, sizeof name, &len));
  if (strcmp(name, "allowRemote") == 0) CHECK(napi_get_value_bool(env, argv[2], &flag));
  else CHECK(napi_get_value_double(env, argv[2], &v));
  int rc = strcmp(name, "allowRemote") == 0  ? uvw_worker_set_allow_remote(wk->w, flag)
           : strcmp(name, "socketMode") == 0 ? uvw_worker_set_socket_mode(wk->w, (unsigned)v)
           : strcmp(name, "socketGroup") == 0 ? uvw_worker_set_socket_group(wk->w, (long)v)
           : strcmp(name, "allowUid") == 0   ? uvw_worker_allow_uid(wk->w, (uint32_t)v)
           : strcmp(name, "allowGid") == 0   ? uvw_worker_allow_gid(wk->w, (uint32_t)v)
           : strcmp(name, "dispatchTimeoutMs") == 0 ? (uvw_worker_set_dispatch_timeout(wk->w, (uint64_t)v), 0)
                                             : 1;
  if (rc == 1) return uvwn_fail(env, UVW_EINVAL, "uvwool: no worker option %s", name);
  return rc < 0 ? uvwn_throw_last(env) : NULL;
}

/* workerClose(handle, req): onWorkerClosed(req) once every handle closed. */
static napi_value worker_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  nworker_t *wk = nworker_of(env, argv[0]);
  if (wk == NULL) return NULL;
  CHECK(napi_create_reference(env, argv[1], 1, &wk->closer));
  worker_start_close(wk);
  return NULL;
}

/* setWorkerHooks(onStep, onCancel, onWorkerError, onWorkerClosed). */
static napi_value set_worker_hooks(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uvwn_env_t *e = uvwn_env(env);
  napi_ref *slots[] = {&e->on_step, &e->on_cancel, &e->on_worker_error, &e->on_worker_closed};
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  for (size_t i = 0; i < 4; i++) {
    if (*slots[i]) napi_delete_reference(env, *slots[i]);
    *slots[i] = NULL;
    CHECK(napi_create_reference(env, argv[i], 1, slots[i]));
  }
  return NULL;
}

int uvwn_worker_init(napi_env env, napi_value exports) {
  static const uvwn_fn_t fns[] = {
      {"setWorkerHooks", set_worker_hooks}, {"workerOpen", worker_open},   {"workerRegister", worker_register},
      {"workerListen", worker_listen},      {"workerAddress", worker_address}, {"workerRef", worker_ref},
      {"workerSetLimits", worker_set_limits}, {"workerLimits", worker_limits}, {"workerStats", worker_stats},
      {"workerOption", worker_option},      {"workerClose", worker_close}, {"callSet", call_set},
      {"callReset", call_reset},            {"callContext", call_context}, {"callAdopt", call_adopt},
      {"callAnswer", call_answer},
  };
  return uvwn_export_fns(env, exports, fns, sizeof fns / sizeof fns[0]);
}
