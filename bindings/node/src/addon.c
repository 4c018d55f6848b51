/* uvwool's Node-API addon: the C core compiled in, the per-variable handles
 * of the process-wide registry, and the on-demand mirror of a JavaScript
 * context into a C context (docs/node.md). JavaScript keeps the current
 * context itself; nothing here runs on a JS read. */
#include <node_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <uvwool/context.h>
#include <uvwool/errors.h>

#include "convert.h"
#include "env.h"
#include "errors_js.h"

static napi_value set_hook(napi_env env, napi_callback_info info, napi_ref *slot) {
  size_t argc = 1;
  napi_value fn;
  napi_valuetype t;
  CHECK(napi_get_cb_info(env, info, &argc, &fn, NULL, NULL));
  if (argc < 1 || napi_typeof(env, fn, &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "UVW_EINVAL", "uvwool: a function is required");
    return NULL;
  }
  if (*slot) napi_delete_reference(env, *slot);
  *slot = NULL;
  CHECK(napi_create_reference(env, fn, 1, slot));
  return NULL;
}

static napi_value set_error_factory(napi_env env, napi_callback_info info) {
  return set_hook(env, info, &uvwn_env(env)->error_factory);
}

/* The function uvw_node_scope_open calls to get the current state's mirror. */
static napi_value set_current_mirror(napi_env env, napi_callback_info info) {
  return set_hook(env, info, &uvwn_env(env)->current_mirror);
}

static int get_string(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return -1;
  return len + 1 < cap ? 0 : -1;
}

/* Variables declared from JavaScript, in any env of the process: a worker
 * thread running the same module declares the same identities, and shares
 * them (index.js refuses a second declaration within one env). */
static pthread_mutex_t js_vars_lock = PTHREAD_MUTEX_INITIALIZER;
static uvw_var_t **js_vars;
static size_t js_vars_len, js_vars_cap;

static int js_var_known(uvw_var_t *var) {
  int found = 0;
  pthread_mutex_lock(&js_vars_lock);
  for (size_t i = 0; i < js_vars_len && !found; i++) found = js_vars[i] == var;
  pthread_mutex_unlock(&js_vars_lock);
  return found;
}

static int js_var_add(uvw_var_t *var) {
  int rc = 0;
  pthread_mutex_lock(&js_vars_lock);
  if (js_vars_len == js_vars_cap) {
    size_t cap = js_vars_cap ? js_vars_cap * 2 : 16;
    uvw_var_t **grown = realloc(js_vars, cap * sizeof *grown);
    if (grown == NULL) rc = -1;
    else js_vars = grown, js_vars_cap = cap;
  }
  if (rc == 0) js_vars[js_vars_len++] = var;
  pthread_mutex_unlock(&js_vars_lock);
  return rc;
}

/* declare(namespace, name[, default]) -> handle of the process-wide
 * variable; ContextVarCollision when (namespace, name) is taken by a
 * native addon (a wire stub is taken over).
 * index.js has checked the types and same-env collisions. */
static napi_value declare(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  char ns[1024], name[1024];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || get_string(env, argv[0], ns, sizeof ns) || get_string(env, argv[1], name, sizeof name)) {
    napi_throw_type_error(env, "UVW_EINVAL", "uvwool: namespace and name must be strings under 1024 bytes");
    return NULL;
  }
  uvw_value_t *def = NULL;
  if (argc == 3 && (def = uvwn_to_value(env, argv[2])) == NULL) return NULL;
  uvw_var_t *var;
  int rc = uvw_var_declare(ns, name, def, &var);
  uvw_value_unref(def);
  if (rc == UVW_ECOLLISION && (var = uvw_var_find(ns, name)) != NULL && js_var_known(var)) rc = 0;
  else if (rc == 0 && js_var_add(var) < 0) {
    napi_throw_error(env, "UVW_ENOMEM", "uvwool: out of memory");
    return NULL;
  }
  if (rc < 0) return uvwn_throw_last(env);
  CHECK(napi_create_external(env, var, NULL, NULL, &out));
  return out;
}

static void mirror_free(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  uvw_context_unref(data);
}

napi_value uvwn_context_external(napi_env env, uvw_context_t *ctx) {
  napi_value out;
  if (napi_create_external(env, ctx, mirror_free, NULL, &out) == napi_ok) return out;
  uvw_context_unref(ctx);
  return NULL;
}

static int mirror_fill(napi_env env, napi_value entries, uint32_t n) {
  for (uint32_t i = 0; i + 1 < n; i += 2) {
    napi_value h, v;
    uvw_var_t *var;
    if (napi_get_element(env, entries, i, &h) != napi_ok || napi_get_element(env, entries, i + 1, &v) != napi_ok ||
        napi_get_value_external(env, h, (void **)&var) != napi_ok)
      return -1;
    uvw_value_t *value = uvwn_to_value(env, v);
    if (value == NULL) return -1;
    int rc = uvw_set(var, value, NULL);
    uvw_value_unref(value);
    if (rc < 0) return uvwn_throw_last(env), -1;
  }
  return 0;
}

/* mirror([handle, value, ...][, base]) -> a C context holding those
 * bindings, for native code. Built only when native code needs the JS
 * context; index.js caches it per immutable JS state. With a base (a C
 * context external: a hosted routine's, lib/worker.js) the bindings are set
 * over a copy of it, which keeps what JS does not see (stubs, pending
 * resets, the chain). */
static napi_value mirror(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  uvw_context_t *base = NULL;
  uint32_t n;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_array_length(env, argv[0], &n));
  if (argc > 1) CHECK(napi_get_value_external(env, argv[1], (void **)&base));
  napi_value entries = argv[0];
  uvw_context_t *ctx = base ? uvw_context_copy(base) : uvw_context_new();
  if (ctx == NULL) return uvwn_throw_last(env);
  if (uvw_context_enter(ctx) < 0) {
    uvw_context_unref(ctx);
    return uvwn_throw_last(env);
  }
  int rc = mirror_fill(env, entries, n);
  uvw_context_exit(ctx);
  if (rc < 0) {
    uvw_context_unref(ctx);
    return NULL;
  }
  return uvwn_context_external(env, ctx);
}

/* nativeGet(mirror, handle): uvw_get inside the mirrored context, as a
 * native addon reads; LookupError when unbound without default. */
static napi_value native_get(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out = NULL;
  uvw_context_t *ctx;
  uvw_var_t *var;
  uvw_value_t *value;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_external(env, argv[0], (void **)&ctx));
  CHECK(napi_get_value_external(env, argv[1], (void **)&var));
  if (uvw_context_enter(ctx) < 0) return uvwn_throw_last(env);
  int rc = uvw_get(var, &value);
  if (rc == 0) out = uvwn_from_value(env, value);
  uvw_context_exit(ctx);
  return rc < 0 ? uvwn_throw_last(env) : out;
}

/* mirrorSize(mirror): the number of bindings C sees. */
static napi_value mirror_size(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out;
  uvw_context_t *ctx;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  CHECK(napi_get_value_external(env, arg, (void **)&ctx));
  CHECK(napi_create_uint32(env, (uint32_t)uvw_context_size(ctx), &out));
  return out;
}

/* uvVersion() -> [the uv.h this addon was compiled against, the libuv it
 * runs on]: Node's headers and Node's libuv, never Debian's. */
static napi_value uv_versions(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out, compiled, running;
  char hdr[32];
  snprintf(hdr, sizeof hdr, "%d.%d.%d", UV_VERSION_MAJOR, UV_VERSION_MINOR, UV_VERSION_PATCH);
  CHECK(napi_create_array_with_length(env, 2, &out));
  CHECK(napi_create_string_utf8(env, hdr, NAPI_AUTO_LENGTH, &compiled));
  CHECK(napi_create_string_utf8(env, uv_version_string(), NAPI_AUTO_LENGTH, &running));
  CHECK(napi_set_element(env, out, 0, compiled));
  CHECK(napi_set_element(env, out, 1, running));
  return out;
}

int uvwn_export_fns(napi_env env, napi_value exports, const uvwn_fn_t *fns, size_t n) {
  for (size_t i = 0; i < n; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return -1;
  }
  return 0;
}

static napi_value init(napi_env env, napi_value exports) {
  static const uvwn_fn_t fns[] = {
      {"setErrorFactory", set_error_factory},
      {"setCurrentMirror", set_current_mirror},
      {"declare", declare},
      {"mirror", mirror},
      {"nativeGet", native_get},
      {"mirrorSize", mirror_size},
      {"uvVersions", uv_versions},
  };
  if (uvwn_env_init(env) < 0) return NULL;
  if (uvwn_dispatch_init(env, exports) < 0 || uvwn_worker_init(env, exports) < 0 || uvwn_export_fns(env, exports, fns, sizeof fns / sizeof fns[0]) < 0)
    return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
