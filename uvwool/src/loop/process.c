/* uv_spawn: the exit callback is a done-callback (docs/semantics.md §5), captured at
 * spawn, keyed by the process handle in the main slot. The capture is
 * released once the exit callback has run, or by uvw_close if the handle is
 * closed first (uvw_close releases the handle's main slot).
 *
 * The context also crosses into the child, through the environment carrier
 * (UVWOOL_CHAIN, uvwool/wire.h): when the current context is armed, the
 * child's environment (options->env, or ours when that is NULL) gets
 * UVWOOL_CHAIN set to a fork-like rendering of it, and a child that calls
 * uvw_env_mount() at start continues with those values on a chain of its
 * own. An UVWOOL_CHAIN the caller put in options->env is left alone: the
 * caller chose. */
#include <string.h>

#include "alloc.h"
#include "error.h"
#include "loop_internal.h"
#include "uvwool/wire.h"

extern char **environ;

static void exit_trampoline(uv_process_t *handle, int64_t exit_status, int term_signal) {
  uvw__loop_t *L;
  uvw__reg_t *r = uvw__lookup(handle->loop, handle, UVW__SLOT_MAIN, &L, "uv_exit_cb");
  if (r == NULL) return;
  uvw__frame_t f;
  /* One-shot: a process exits once. If the callback closes the handle with
   * uvw_close, the release is deferred to the end of the frame. */
  uvw__oneshot_begin(&f, L, r);
  ((uv_exit_cb)r->cb)(handle, exit_status, term_signal);
  uvw__reg_end(&f, L, r);
}

static int is_chain_entry(const char *entry) {
  size_t n = strlen(UVW_ENV_CHAIN);
  return strncmp(entry, UVW_ENV_CHAIN, n) == 0 && entry[n] == '=';
}

/* The child's environment with UVWOOL_CHAIN for the current context, in
 * *env (a new array of borrowed strings plus *chain, both freed by the
 * caller), or *env = NULL when nothing is to be added. */
static int child_env(const uv_process_options_t *o, char ***env, char **chain) {
  *env = NULL;
  *chain = NULL;
  char **base = o->env ? o->env : environ;
  size_t n = 0;
  for (; base && base[n]; n++)
    if (o->env && is_chain_entry(base[n])) return 0; /* explicit: the caller's */
  int rc = uvw_env_encode(NULL, chain);
  if (rc != 0 || *chain == NULL) return rc; /* unarmed: the environment as it is */
  char **out = uvw__malloc((n + 2) * sizeof(*out));
  if (out == NULL) {
    uvw__free(*chain);
    *chain = NULL;
    return uvw__error_nomem("child environment");
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!is_chain_entry(base[i])) out[k++] = base[i]; /* ours, inherited: replaced */
  out[k++] = *chain;
  out[k] = NULL;
  *env = out;
  return 0;
}

int uvw_spawn(uv_loop_t *loop, uv_process_t *handle, const uv_process_options_t *options) {
  /* libuv has no error code for NULL options (it dereferences them): refuse
   * rather than crash. */
  if (options == NULL) return UV_EINVAL;
  /* The caller's options are const: libuv gets a copy (it keeps no pointer
   * to the options, nor to the environment, after uv_spawn returns). */
  uv_process_options_t opts = *options;
  char **env, *chain;
  int rc = child_env(options, &env, &chain);
  if (rc != 0) return rc;
  if (env) opts.env = env;
  uvw__loop_t *L = NULL;
  uvw__reg_t *r = NULL;
  if (options->exit_cb == NULL) {
    rc = uv_spawn(loop, handle, &opts); /* without an exit callback there is nothing to capture */
  } else if ((rc = uvw__register(loop, handle, UVW__SLOT_MAIN, (uvw__fn)options->exit_cb, NULL, &L, &r)) == 0) {
    opts.exit_cb = exit_trampoline;
    rc = uvw__registered(L, r, uv_spawn(loop, handle, &opts));
  }
  uvw__free(env);
  uvw__free(chain);
  return rc;
}
