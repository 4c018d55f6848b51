/* Replies of dispatches made from Lua (lua_dispatch.c, lua_stream.c).
 *
 * The core calls uvwl_on_reply on luv's loop, in the capture it made at the
 * dispatch with the worker's manifest merged into it. The continuation
 * registered with the request is called on luv's main thread through
 * luv's cb_pcall, so its error reaches the handler every luv callback's
 * error reaches (luv's default, Neovim's). For a coroutine continuation
 * (apply) the merged context is encoded here and handed over as a reply
 * object; the coroutine mounts it into its own context when it resumes
 * (apply_reply), so the worker's changes land in the task that waited, its
 * tokens stay valid, and no other coroutine sees them. */
#include <stdlib.h>

#include "lua_dispatch.h"

#define UVWL_REPLY_MT "uvwool.ReplyManifest"

typedef struct {
  uvw_manifest_t *m; /* NULL once mounted */
} reply_box_t;

static int reply_gc(lua_State *L) {
  reply_box_t *b = lua_touserdata(L, 1);
  uvw_manifest_free(b->m);
  b->m = NULL;
  return 0;
}

/* The merged context the reply callback runs in, as a manifest to mount. */
static int merged_manifest(uvw_manifest_t **out) {
  void *buf = NULL;
  size_t len = 0;
  int rc = uvw_manifest_encode(NULL, &buf, &len);
  if (rc == 0) rc = uvw_manifest_decode(buf, len, out);
  uvw_free(buf);
  return rc;
}

/* Runs through luv's cb_pcall: cont(ok, value_or_error, manifest, done). */
static int reply_trampoline(lua_State *L) {
  uvwl_req_t *q = lua_touserdata(L, 1);
  const uvw_reply_t *r = lua_touserdata(L, 2);
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, q->cont_ref);
  reply_box_t *box = NULL;
  int status = r->status;
  if (q->apply && (status == 0 || status == UVW_EREMOTE)) {
    box = lua_newuserdata(L, sizeof *box);
    box->m = NULL;
    luaL_getmetatable(L, UVWL_REPLY_MT);
    lua_setmetatable(L, -2);
    int rc = merged_manifest(&box->m);
    if (rc < 0) {
      lua_pop(L, 1);
      box = NULL;
      lua_pushboolean(L, 0);
      uvwl_push_error(L, rc);
      lua_pushnil(L);
      goto call;
    }
    lua_insert(L, 2); /* cont box */
  }
  if (status == 0) {
    lua_pushboolean(L, 1);
    if (!uvwl_push_value(L, r->value)) { /* an error object instead */
      lua_pushboolean(L, 0);
      lua_replace(L, -3);
    }
  } else {
    lua_pushboolean(L, 0);
    uvwl_push_error_detail(L, r->error, status);
  }
  if (box) {
    lua_pushvalue(L, 2);
    lua_remove(L, 2);
  } else {
    lua_pushnil(L);
  }
call:
  lua_pushboolean(L, r->done);
  if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
    /* luv's and Neovim's handlers print the error with lua_tostring. */
    if (!lua_isstring(L, -1) && luaL_callmeta(L, -1, "__tostring") && lua_isstring(L, -1)) lua_remove(L, -2);
    return lua_error(L);
  }
  return 0;
}

void uvwl_on_reply(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  uvwl_req_t *q = arg;
  lua_State *L = q->ds->L;
  if (L != NULL) {
    int top = lua_gettop(L);
    lua_pushcfunction(L, reply_trampoline);
    lua_pushlightuserdata(L, q);
    lua_pushlightuserdata(L, (void *)r);
    q->ds->pcall(L, 2, 0, 0);
    lua_settop(L, top);
    luaL_unref(L, LUA_REGISTRYINDEX, q->cont_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, q->keep_ref);
    if (q->handle) *q->handle = NULL; /* d is gone once this returns */
    luaL_unref(L, LUA_REGISTRYINDEX, q->handle_ref);
  }
  free(q);
}

uvwl_req_t *uvwl_req_new(lua_State *L, uvwl_dstate_t *ds, int cont_idx, int keep_idx, int apply) {
  uvwl_req_t *q = malloc(sizeof *q);
  if (q == NULL) return NULL;
  q->ds = ds;
  q->apply = apply;
  q->handle = NULL;
  q->handle_ref = LUA_NOREF;
  lua_pushvalue(L, cont_idx);
  q->cont_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, keep_idx);
  q->keep_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return q;
}

void uvwl_req_drop(lua_State *L, uvwl_req_t *q) {
  luaL_unref(L, LUA_REGISTRYINDEX, q->cont_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, q->keep_ref);
  free(q);
}

/* apply_reply(m): mount a reply's merged context into the current one (the
 * coroutine that waited). Once; raises (context unchanged) on a guard trip. */
int uvwl_apply_reply(lua_State *L) {
  reply_box_t *b = uvwl_test_udata(L, 1, UVWL_REPLY_MT);
  if (b == NULL || b->m == NULL) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: not an unused dispatch reply");
  uvw_manifest_t *m = b->m;
  b->m = NULL;
  int rc = uvw_manifest_mount(m);
  uvw_manifest_free(m);
  return rc < 0 ? uvwl_raise_code(L, rc) : 0;
}

void uvwl_open_replies(lua_State *L) {
  luaL_newmetatable(L, UVWL_REPLY_MT);
  lua_pushcfunction(L, reply_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
