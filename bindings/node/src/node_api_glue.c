/* The addon-author API of include/uvwool/node.h. */
#include <stdlib.h>
#include <string.h>
#include <uvwool/errors.h>
#include <uvwool/node.h>

#include "env.h"
#include "error.h" /* the core's detail-record helpers */

static int fail_einval(const char *what) {
  uvw__error_set(UVW_EINVAL, UVW_KIND_VALUE_ERROR, "%s", what);
  return UVW_EINVAL;
}

static int fail_enomem(const char *fn) {
  uvw__error_set(UVW_ENOMEM, UVW_KIND_MEMORY_ERROR, "%s: out of memory", fn);
  return UVW_ENOMEM;
}

/* The C mirror of the current JS state: one call into index.js, made
 * through the uvwool addon's own napi_env (the caller's `env` is another
 * addon's; both are the same isolate on this thread). */
static uvw_context_t *current_mirror(napi_env env) {
  (void)env;
  uvwn_env_t *e = uvwn_env_of_thread();
  napi_value fn, global, out;
  uvw_context_t *ctx = NULL;
  if (e == NULL || e->current_mirror == NULL) return NULL;
  napi_env own = e->env;
  if (napi_get_reference_value(own, e->current_mirror, &fn) != napi_ok || napi_get_global(own, &global) != napi_ok ||
      napi_call_function(own, global, fn, 0, NULL, &out) != napi_ok ||
      napi_get_value_external(own, out, (void **)&ctx) != napi_ok) {
    bool pending = false;
    napi_value exc;
    if (napi_is_exception_pending(own, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(own, &exc);
    return NULL;
  }
  return ctx;
}

int uvw_node_scope_open(napi_env env, uvw_node_scope_t *scope) {
  if (env == NULL || scope == NULL) return fail_einval("uvw_node_scope_open: env and scope must not be NULL");
  uvw_context_t *mirror = current_mirror(env);
  if (mirror == NULL) return fail_einval("uvw_node_scope_open: the uvwool package is not loaded in this env");
  uvw_context_t *ctx = uvw_context_copy(mirror);
  if (ctx == NULL) return fail_enomem("uvw_node_scope_open");
  int rc = uvw_context_enter(ctx);
  if (rc < 0) {
    uvw_context_unref(ctx);
    return rc;
  }
  scope->ctx = ctx;
  return 0;
}

int uvw_node_scope_close(uvw_node_scope_t *scope) {
  if (scope == NULL || scope->ctx == NULL) return fail_einval("uvw_node_scope_close: no open scope");
  int rc = uvw_context_exit(scope->ctx);
  if (rc < 0) return rc;
  uvw_context_unref(scope->ctx);
  scope->ctx = NULL;
  return 0;
}

struct uvw_node_callback_s {
  napi_env env;
  napi_ref fn;
  napi_async_context actx;
  uvw_context_t *ctx;
};

int uvw_node_callback_new(napi_env env, napi_value fn, const char *name, uvw_node_callback_t **out) {
  napi_valuetype t;
  napi_value resource_name;
  if (env == NULL || fn == NULL || name == NULL || out == NULL || napi_typeof(env, fn, &t) != napi_ok ||
      t != napi_function)
    return fail_einval("uvw_node_callback_new: env, a function, a name and out are required");
  uvw_node_callback_t *cb = calloc(1, sizeof *cb);
  if (cb == NULL || (cb->ctx = uvw_context_copy_current()) == NULL) goto fail;
  cb->env = env;
  /* NULL resource: a resource object referenced nowhere else loses the
   * store after a GC on Node 20. */
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, NULL, resource_name, &cb->actx) != napi_ok)
    goto fail;
  if (napi_create_reference(env, fn, 1, &cb->fn) != napi_ok) {
    napi_async_destroy(env, cb->actx);
    goto fail;
  }
  *out = cb;
  return 0;
fail:
  if (cb) uvw_context_unref(cb->ctx);
  free(cb);
  return fail_enomem("uvw_node_callback_new");
}

int uvw_node_callback_call(uvw_node_callback_t *cb, size_t argc, const napi_value *argv, napi_value *result) {
  if (cb == NULL) return fail_einval("uvw_node_callback_call: callback is NULL");
  napi_env env = cb->env;
  napi_escapable_handle_scope hs = NULL;
  napi_value fn, recv, res;
  bool pending = false;
  uvw_context_t *ctx = uvw_context_copy(cb->ctx);
  if (ctx == NULL) return fail_enomem("uvw_node_callback_call");
  int rc = uvw_context_enter(ctx);
  if (rc < 0) {
    uvw_context_unref(ctx);
    return rc;
  }
  if (result) *result = NULL;
  /* Escaping costs: only when the caller wants the result. */
  napi_handle_scope plain = NULL;
  if (result)
    napi_open_escapable_handle_scope(env, &hs);
  else
    napi_open_handle_scope(env, &plain);
  /* An object receiver: napi_make_callback refuses undefined. */
  napi_status st = napi_get_reference_value(env, cb->fn, &fn);
  if (st == napi_ok) st = napi_get_global(env, &recv);
  if (st == napi_ok) st = napi_make_callback(env, cb->actx, recv, fn, argc, argv, &res);
  if (st == napi_ok && result) napi_escape_handle(env, hs, res, result);
  /* Only a failed call can leave an exception pending. */
  if (st != napi_ok) napi_is_exception_pending(env, &pending);
  if (pending) { /* the JS callback threw: Node reports it as uncaught */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  if (result)
    napi_close_escapable_handle_scope(env, hs);
  else
    napi_close_handle_scope(env, plain);
  uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  return 0;
}

uvw_context_t *uvw_node_callback_context(const uvw_node_callback_t *cb) {
  return cb ? cb->ctx : NULL;
}

void uvw_node_callback_free(uvw_node_callback_t *cb) {
  if (cb == NULL) return;
  napi_async_destroy(cb->env, cb->actx);
  napi_delete_reference(cb->env, cb->fn);
  uvw_context_unref(cb->ctx);
  free(cb);
}
