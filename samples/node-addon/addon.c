/* A Node addon written against uvwool's C API (uvwool/node.h): it reads
 * the JS context in C, and calls JS back from a libuv timer on Node's loop
 * in the context captured at registration. Built from the installed uvwool
 * npm package (binding.gyp takes its include folders from uvwool/gyp). */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <uvwool/loop.h>
#include <uvwool/node.h>

#define NAPI_OK(call)                                                                                                  \
  do {                                                                                                                 \
    if ((call) != napi_ok) return NULL;                                                                                \
  } while (0)

static napi_value throw_uvw(napi_env env, int rc) {
  const uvw_error_t *e = uvw_last_error();
  napi_throw_error(env, uvw_err_name(rc), e ? uvw_error_message(e) : uvw_strerror(rc));
  return NULL;
}

/* The string value of (ns, name) as C sees it now, or null when unbound. */
static napi_value c_string(napi_env env, const char *ns, const char *name) {
  napi_value out;
  char buf[256];
  size_t len;
  uvw_var_t *var = uvw_var_find(ns, name);
  if (var == NULL || uvw_get_string(var, buf, sizeof buf, &len) < 0) NAPI_OK(napi_get_null(env, &out));
  else NAPI_OK(napi_create_string_utf8(env, buf, len, &out));
  return out;
}

static int args_ns_name(napi_env env, napi_callback_info info, char *ns, char *name, napi_value *rest, size_t nrest) {
  napi_value argv[4];
  size_t argc = 4, len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 + nrest ||
      napi_get_value_string_utf8(env, argv[0], ns, 128, &len) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], name, 128, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected (namespace, name, ...)");
    return -1;
  }
  for (size_t i = 0; i < nrest; i++) rest[i] = argv[2 + i];
  return 0;
}

/* readVar(ns, name): uvw_get in the JS context current at this call. */
static napi_value read_var(napi_env env, napi_callback_info info) {
  char ns[128], name[128];
  uvw_node_scope_t scope;
  if (args_ns_name(env, info, ns, name, NULL, 0) < 0) return NULL;
  int rc = uvw_node_scope_open(env, &scope);
  if (rc < 0) return throw_uvw(env, rc);
  napi_value out = c_string(env, ns, name);
  uvw_node_scope_close(&scope);
  return out;
}

/* writeVar(ns, name, s): sets in C and returns what C reads back; the write
 * stays in this call's scope. */
static napi_value write_var(napi_env env, napi_callback_info info) {
  char ns[128], name[128], s[128];
  napi_value value;
  size_t len;
  uvw_node_scope_t scope;
  if (args_ns_name(env, info, ns, name, &value, 1) < 0) return NULL;
  NAPI_OK(napi_get_value_string_utf8(env, value, s, sizeof s, &len));
  int rc = uvw_node_scope_open(env, &scope);
  if (rc < 0) return throw_uvw(env, rc);
  uvw_var_t *var = uvw_var_find(ns, name);
  rc = var ? uvw_set_cstring(var, s, NULL) : UVW_EINVAL;
  napi_value out = rc < 0 ? NULL : c_string(env, ns, name);
  uvw_node_scope_close(&scope);
  return rc < 0 ? throw_uvw(env, rc) : out;
}

typedef struct {
  uv_timer_t timer;
  napi_env env;
  uvw_node_callback_t *cb;
  char ns[128], name[128];
} sample_timer_t;

static void timer_closed(uv_handle_t *h) {
  free(h->data);
}

/* Fires on Node's loop: C reads in the context captured at registration,
 * then JS is called back in it (ALS stores intact). */
static void timer_fired(uv_timer_t *t) {
  sample_timer_t *st = t->data;
  napi_handle_scope hs;
  uvw_context_t *ctx = uvw_context_copy(uvw_node_callback_context(st->cb));
  int entered = ctx && uvw_context_enter(ctx) == 0;
  napi_open_handle_scope(st->env, &hs);
  napi_value arg = c_string(st->env, st->ns, st->name);
  uvw_node_callback_call(st->cb, 1, &arg, NULL);
  napi_close_handle_scope(st->env, hs);
  if (entered) uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  uvw_node_callback_free(st->cb);
  uv_close((uv_handle_t *)t, timer_closed);
}

/* after(ns, name, ms, fn): fn(valueSeenByC) after ms, in this call's context. */
static napi_value after(napi_env env, napi_callback_info info) {
  napi_value rest[2];
  uint32_t ms;
  uv_loop_t *loop;
  uvw_node_scope_t scope;
  sample_timer_t *st = calloc(1, sizeof *st);
  if (st == NULL || args_ns_name(env, info, st->ns, st->name, rest, 2) < 0 ||
      napi_get_value_uint32(env, rest[0], &ms) != napi_ok || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(st);
    return NULL;
  }
  int rc = uvw_node_scope_open(env, &scope);
  if (rc == 0) {
    rc = uvw_node_callback_new(env, rest[1], "uvwool.sample.after", &st->cb);
    uvw_node_scope_close(&scope);
  }
  if (rc < 0) {
    free(st);
    return throw_uvw(env, rc);
  }
  st->env = env;
  st->timer.data = st;
  uv_timer_init(loop, &st->timer);
  uv_timer_start(&st->timer, timer_fired, ms, 0);
  return NULL;
}

/* ---- pool work: uvw_queue_work vs uvw_to_thread ------------------------- */

typedef struct {
  uv_work_t req;
  uvw_node_callback_t *cb;
  char ns[128], name[128];
  int rc;          /* of uvw_get_string on the pool thread */
  char value[128]; /* what the pool thread read */
  char kind[32];   /* ChainContention's kind field, when refused */
  napi_env env_for_js;
} sample_work_t;

static void work_on_pool(uv_work_t *req) {
  sample_work_t *w = req->data;
  size_t len;
  uvw_var_t *var = uvw_var_find(w->ns, w->name);
  w->rc = var ? uvw_get_string(var, w->value, sizeof w->value, &len) : UVW_EINVAL;
  const uvw_error_t *e = w->rc < 0 ? uvw_last_error() : NULL;
  const char *kind = e ? uvw_error_field(e, "kind") : NULL;
  snprintf(w->kind, sizeof w->kind, "%s", kind ? kind : "");
}

/* On Node's loop, in the context captured at submission: JS gets
 * {code, value, kind, after} where `after` is what C reads here. */
static void work_done(uv_work_t *req, int status) {
  sample_work_t *w = req->data;
  napi_env env = NULL;
  napi_handle_scope hs;
  napi_value obj, v;
  (void)status;
  env = w->env_for_js;
  napi_open_handle_scope(env, &hs);
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, w->rc < 0 ? uvw_err_name(w->rc) : "UVW_OK", NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "code", v);
  if (w->rc == 0) napi_create_string_utf8(env, w->value, NAPI_AUTO_LENGTH, &v);
  else napi_get_null(env, &v);
  napi_set_named_property(env, obj, "value", v);
  napi_create_string_utf8(env, w->kind, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "kind", v);
  napi_set_named_property(env, obj, "after", c_string(env, w->ns, w->name));
  uvw_node_callback_call(w->cb, 1, &obj, NULL);
  napi_close_handle_scope(env, hs);
  uvw_node_callback_free(w->cb);
  free(w);
}

/* poolRead(ns, name, mode, fn): reads (ns, name) on a pool thread, through
 * uvw_queue_work ("queue_work": the captured context, so the read trips the
 * thread guard) or uvw_to_thread ("to_thread": a detached fork). */
static napi_value pool_read(napi_env env, napi_callback_info info) {
  napi_value rest[2];
  char mode[32];
  size_t len;
  uv_loop_t *loop;
  uvw_node_scope_t scope;
  sample_work_t *w = calloc(1, sizeof *w);
  if (w == NULL || args_ns_name(env, info, w->ns, w->name, rest, 2) < 0 ||
      napi_get_value_string_utf8(env, rest[0], mode, sizeof mode, &len) != napi_ok ||
      napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(w);
    return NULL;
  }
  w->req.data = w;
  w->env_for_js = env;
  int rc = uvw_node_scope_open(env, &scope);
  if (rc == 0) {
    rc = uvw_node_callback_new(env, rest[1], "uvwool.sample.pool", &w->cb);
    if (rc == 0) {
      rc = strcmp(mode, "to_thread") == 0 ? uvw_to_thread(loop, &w->req, work_on_pool, work_done)
                                          : uvw_queue_work(loop, &w->req, work_on_pool, work_done);
      if (rc < 0) uvw_node_callback_free(w->cb);
    }
    uvw_node_scope_close(&scope);
  }
  if (rc < 0) {
    free(w);
    return throw_uvw(env, rc);
  }
  return NULL;
}

/* ---- a repeating uvw_timer: uvwool's multi-shot rule on every line ------ */

typedef struct {
  uv_timer_t timer;
  napi_env env;
  uvw_node_callback_t *cb;
  char ns[128], name[128];
  int left;
} sample_ticker_t;

static void ticker_closed(uv_handle_t *h) {
  free(h->data);
}

/* Runs in the registration's context (the loop layer enters it): reads what
 * the previous tick wrote, writes "tick<n>", reports the read to JS. */
static void ticker_fired(uv_timer_t *t) {
  sample_ticker_t *k = t->data;
  napi_handle_scope hs;
  char next[32];
  napi_open_handle_scope(k->env, &hs);
  napi_value seen = c_string(k->env, k->ns, k->name);
  snprintf(next, sizeof next, "tick%d", k->left);
  uvw_var_t *var = uvw_var_find(k->ns, k->name);
  if (var) uvw_set_cstring(var, next, NULL);
  uvw_node_callback_call(k->cb, 1, &seen, NULL);
  napi_close_handle_scope(k->env, hs);
  if (--k->left == 0) {
    uvw_node_callback_free(k->cb);
    uvw_timer_stop(t);
    uv_close((uv_handle_t *)t, ticker_closed);
  }
}

/* ticker(ns, name, n, fn): a repeating uvw_timer_start, n ticks, fn(seenByC). */
static napi_value ticker(napi_env env, napi_callback_info info) {
  napi_value rest[2];
  uint32_t n;
  uv_loop_t *loop;
  uvw_node_scope_t scope;
  sample_ticker_t *k = calloc(1, sizeof *k);
  if (k == NULL || args_ns_name(env, info, k->ns, k->name, rest, 2) < 0 ||
      napi_get_value_uint32(env, rest[0], &n) != napi_ok || n == 0 || napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(k);
    return NULL;
  }
  k->env = env;
  k->left = (int)n;
  k->timer.data = k;
  uv_timer_init(loop, &k->timer);
  int rc = uvw_node_scope_open(env, &scope);
  if (rc == 0) {
    rc = uvw_node_callback_new(env, rest[1], "uvwool.sample.ticker", &k->cb);
    if (rc == 0 && (rc = uvw_timer_start(&k->timer, ticker_fired, 1, 1)) < 0) uvw_node_callback_free(k->cb);
    uvw_node_scope_close(&scope);
  }
  if (rc < 0) {
    uv_close((uv_handle_t *)&k->timer, ticker_closed);
    return throw_uvw(env, rc);
  }
  return NULL;
}

/* ---- a value whose last C reference drops on a pool thread ------------- */

static uvw_value_t *held; /* one value at a time, JS thread only */

/* hold(ns, name): keeps a new reference to the value bound now. */
static napi_value hold(napi_env env, napi_callback_info info) {
  char ns[128], name[128];
  uvw_node_scope_t scope;
  if (held != NULL || args_ns_name(env, info, ns, name, NULL, 0) < 0) return NULL;
  int rc = uvw_node_scope_open(env, &scope);
  if (rc < 0) return throw_uvw(env, rc);
  uvw_var_t *var = uvw_var_find(ns, name);
  rc = var ? uvw_get_ref(var, &held) : UVW_EINVAL;
  uvw_node_scope_close(&scope);
  return rc < 0 ? throw_uvw(env, rc) : NULL;
}

typedef struct {
  uv_work_t req;
  uvw_value_t *value;
  napi_env env;
  uvw_node_callback_t *cb;
} sample_drop_t;

static void drop_on_pool(uv_work_t *req) {
  sample_drop_t *d = req->data;
  uvw_value_unref(d->value); /* the last reference: released on this pool thread */
}

static void drop_done(uv_work_t *req, int status) {
  sample_drop_t *d = req->data;
  napi_handle_scope hs;
  (void)status;
  napi_open_handle_scope(d->env, &hs);
  uvw_node_callback_call(d->cb, 0, NULL, NULL);
  napi_close_handle_scope(d->env, hs);
  uvw_node_callback_free(d->cb);
  free(d);
}

/* releaseOnPool(fn): drops the held value on a pool thread (plain
 * uv_queue_work, no context), then fn() on the loop. */
static napi_value release_on_pool(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value fn;
  uv_loop_t *loop;
  sample_drop_t *d;
  NAPI_OK(napi_get_cb_info(env, info, &argc, &fn, NULL, NULL));
  if (held == NULL || (d = calloc(1, sizeof *d)) == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  int rc = uvw_node_callback_new(env, fn, "uvwool.sample.drop", &d->cb);
  if (rc < 0) {
    free(d);
    return throw_uvw(env, rc);
  }
  d->env = env;
  d->value = held;
  d->req.data = d;
  held = NULL;
  uv_queue_work(loop, &d->req, drop_on_pool, drop_done);
  return NULL;
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"readVar", read_var}, {"writeVar", write_var}, {"after", after},
             {"poolRead", pool_read}, {"ticker", ticker}, {"hold", hold}, {"releaseOnPool", release_on_pool}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    NAPI_OK(napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f));
    NAPI_OK(napi_set_named_property(env, exports, fns[i].name, f));
  }
  return exports;
}
