/* The context across luv's other Lua states (uvwool.to_thread): a Lua
 * state on a luv work thread cannot hold the loop thread's contexts, so the
 * context travels as text: a thread fork of the submitter's context (new
 * chain id, variables without UVW_PROPAGATE_THREAD left out) encoded with
 * uvwool's codecs, mounted into a fresh context around the work function.
 * The work thread then owns its own chain and never trips the guard; its
 * writes die with that context. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>

#include "uvwool_lua.h"

/* fork_text(): the current context's thread fork as a text manifest ("" when
 * unarmed). Values without a codec (opaque Lua values) are left out with a
 * SerializationWarning; strict mode raises instead. */
int uvwl_fork_text(lua_State *L) {
  uvw_context_t *fork = uvw_context_fork(uvw_context_current(), UVW_PROPAGATE_THREAD);
  if (fork == NULL) {
    uvwl_push_error(L, UVW_ENOMEM);
    return lua_error(L);
  }
  char *text = NULL;
  int rc = uvw_text_encode(fork, &text);
  uvw_context_unref(fork);
  return uvwl_return_text(L, rc, text);
}

struct mounted_run {
  lua_State *L;
  int nargs;
  const uvw_manifest_t *m;
  int mount_rc;
  int status;
};

static void mounted_trampoline(void *arg) {
  struct mounted_run *r = arg;
  r->mount_rc = uvw_manifest_mount(r->m);
  if (r->mount_rc < 0) return;
  r->status = lua_pcall(r->L, r->nargs, LUA_MULTRET, 0);
}

/* run_in_text(text, fn, ...): fn(...) in a new context holding text's
 * manifest; returns fn's results, raises fn's error once the context is
 * left. */
int uvwl_run_in_text(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  uvw_manifest_t *m = NULL;
  int rc = uvw_text_decode(text, len, &m);
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  uvw_context_t *ctx = uvw_context_new();
  if (ctx == NULL) {
    uvw_manifest_free(m);
    uvwl_push_error(L, UVW_ENOMEM);
    return lua_error(L);
  }
  lua_remove(L, 1); /* fn ... */
  struct mounted_run r = {L, lua_gettop(L) - 1, m, 0, LUA_OK};
  rc = uvw_context_run(ctx, mounted_trampoline, &r);
  uvw_context_unref(ctx);
  uvw_manifest_free(m);
  if (rc == 0 && r.mount_rc < 0) rc = r.mount_rc;
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  if (r.status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

/* interposed(): whether libuv's registration functions are interposed in
 * this process (uvwool's LD_PRELOAD object): the global uv_timer_start is
 * then not libuv's own. uvwool.luv leaves luv alone in that case, so a
 * callback is not captured twice. */
int uvwl_interposed(lua_State *L) {
  void *lib = dlopen("libuv.so.1", RTLD_LAZY | RTLD_NOLOAD);
  void *real = lib ? dlsym(lib, "uv_timer_start") : NULL;
  void *global = dlsym(RTLD_DEFAULT, "uv_timer_start");
  if (lib) dlclose(lib);
  lua_pushboolean(L, real != NULL && global != NULL && real != global);
  return 1;
}
