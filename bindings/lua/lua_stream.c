/* Streaming dispatches from Lua (uvwool.dispatch's conn:stream): the
 * stream object owns its uvw_dispatch_t (closed at stream:close or when
 * collected); each step is a request whose reply goes through lua_reply.c.
 * A pending step keeps the stream object alive. */
#include <string.h>

#include "lua_dispatch.h"

#define UVWL_STREAM_MT "uvwool.Stream"

typedef struct {
  uvw_dispatch_t *d; /* NULL once closed */
} stream_box_t;

static stream_box_t *check_stream(lua_State *L, int idx) {
  stream_box_t *s = uvwl_test_udata(L, idx, UVWL_STREAM_MT);
  if (s == NULL) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a stream (conn:stream) expected");
  return s;
}

static void box_close(stream_box_t *s) {
  uvw_dispatch_close(s->d);
  s->d = NULL;
}

static int stream_gc(lua_State *L) {
  box_close(lua_touserdata(L, 1));
  return 0;
}

/* stream_open(c, routine, args, timeout_ms): a streaming dispatch (the
 * Task is sent; steps follow). */
int uvwl_stream_open(lua_State *L) {
  uvw_conn_t *c = uvwl_peer_conn(L, 1);
  const char *routine = luaL_checkstring(L, 2);
  uvw_dispatch_opts_t opts = uvwl_dispatch_opts(L, 4);
  size_t n = 0;
  uvw_value_t **args = uvwl_check_args(L, 3, &n);
  stream_box_t *s = lua_newuserdata(L, sizeof *s);
  s->d = NULL;
  luaL_getmetatable(L, UVWL_STREAM_MT);
  lua_setmetatable(L, -2);
  int rc = uvw_conn_dispatch_stream(c, routine, args, n, &opts, &s->d);
  uvwl_args_unref(args, n);
  if (rc < 0) return uvwl_raise_code(L, rc);
  return 1;
}

/* An error for the core from the Lua value at idx: an error
 * object (class, errno, message, fields) or a message. */
uvw_error_t *uvwl_error_from_lua(lua_State *L, int idx) {
  if (!lua_istable(L, idx)) {
    const char *msg = lua_tostring(L, idx);
    return uvw_error_new("WoolError", 0, msg ? msg : luaL_typename(L, idx));
  }
  lua_getfield(L, idx, "class");
  lua_getfield(L, idx, "errno");
  lua_getfield(L, idx, "message");
  const char *cls = lua_tostring(L, -3), *msg = lua_tostring(L, -1);
  uvw_error_t *e = uvw_error_new(cls ? cls : "WoolError", (int)lua_tointeger(L, -2), msg ? msg : "");
  lua_pop(L, 3);
  lua_getfield(L, idx, "fields");
  if (e && lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
        lua_pushvalue(L, -1); /* tostring a copy: lua_next needs the key as is */
        uvw_error_add_field(e, lua_tostring(L, -3), lua_tostring(L, -1));
        lua_pop(L, 1);
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return e;
}

/* stream_step(s, kind, value, cont, apply): one step ("next", "send" with
 * value, "throw" with an error object or message); cont as for dispatch. */
int uvwl_stream_step(lua_State *L) {
  stream_box_t *s = check_stream(L, 1);
  const char *kind = luaL_checkstring(L, 2);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  int apply = lua_toboolean(L, 5);
  if (s->d == NULL) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: the stream is closed");
  uvwl_dstate_t *ds = uvwl_dispatch_state(L);
  int is_send = strcmp(kind, "send") == 0, is_throw = strcmp(kind, "throw") == 0;
  if (!is_send && !is_throw && strcmp(kind, "next") != 0)
    return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a stream step is next, send or throw");
  uvw_value_t *v = NULL;
  uvw_error_t *e = NULL;
  if (is_send && (v = uvwl_to_value(L, 3)) == NULL) return lua_error(L);
  if (is_throw && (e = uvwl_error_from_lua(L, 3)) == NULL)
    return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  uvwl_req_t *q = uvwl_req_new(L, ds, 4, 1, apply);
  int rc = UVW_ENOMEM;
  if (q && is_send)
    rc = uvw_dispatch_send(s->d, v, uvwl_on_reply, q);
  else if (q && is_throw)
    rc = uvw_dispatch_throw(s->d, e, uvwl_on_reply, q);
  else if (q)
    rc = uvw_dispatch_next(s->d, uvwl_on_reply, q);
  uvw_value_unref(v);
  uvw_error_unref(e);
  if (rc < 0 && q) uvwl_req_drop(L, q);
  if (q == NULL) return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  return rc < 0 ? uvwl_raise_code(L, rc) : 0;
}

/* stream_close(s): ends the stream (a pending step gets UVW_ECANCELED). */
int uvwl_stream_close(lua_State *L) {
  box_close(check_stream(L, 1));
  return 0;
}

/* stream_done(s): whether the stream ended (or was closed). */
int uvwl_stream_done(lua_State *L) {
  stream_box_t *s = check_stream(L, 1);
  lua_pushboolean(L, s->d == NULL || uvw_dispatch_done(s->d));
  return 1;
}

void uvwl_open_streams(lua_State *L) {
  luaL_newmetatable(L, UVWL_STREAM_MT);
  lua_pushcfunction(L, stream_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
