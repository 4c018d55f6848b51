/* Dispatch from Lua to a uvwool-worker, on luv's loop (uvwool.dispatch).
 *
 * The loop is luv's own: luv keeps its luv_ctx_t as a userdata in the
 * registry under "luv_context", the loop pointer first, the main Lua thread
 * second and its callback pcall third (the struct is the same from luv
 * 1.44.2 to 1.52). Replies arrive in a libuv callback on that loop: the
 * continuation registered with the dispatch is called on the main thread
 * through luv's cb_pcall, so an error in it reaches the handler every luv
 * callback's error reaches (luv's default, Neovim's).
 *
 * Apply-back into a coroutine: the reply callback runs in the capture the
 * core made at the dispatch, with the worker's manifest merged into it.
 * For a coroutine continuation (apply) that merged context is encoded here
 * and handed to the coroutine, which mounts it into its own context when it
 * resumes (apply_reply): the worker's changes land in the task that waited,
 * its tokens stay valid, and no other coroutine sees them. A failed
 * dispatch hands nothing to mount.
 *
 * Lifetimes: a connection or pool record is malloc'd and freed by the
 * core's close callback; a pending dispatch holds registry references to
 * its continuation and to the connection object, so neither is collected
 * while a reply is owed. When the Lua state closes, the state record's
 * sentinel closes what is still open and runs the loop until those
 * handles are gone, before luv's own loop finalizer (which closes every
 * handle of the loop as if it were luv's) can see them. */
#include <stdlib.h>
#include <string.h>

#include "uvwool_lua.h"

#define UVWL_DISPATCH_KEY "uvwool.dispatch"
#define UVWL_PEER_MT "uvwool.Conn"
#define UVWL_STREAM_MT "uvwool.Stream"
#define UVWL_REPLY_MT "uvwool.ReplyManifest"

/* The head of luv's luv_ctx_t: only these fields are read. */
typedef int (*luv_pcall_fn)(lua_State *L, int nargs, int nresults, int flags);
typedef struct {
  uv_loop_t *loop;
  lua_State *L;
  luv_pcall_fn cb_pcall;
} luv_ctx_head_t;

typedef struct peer_s peer_t;

/* One per Lua state that dispatched. */
typedef struct {
  lua_State *L; /* luv's main thread; NULL once the state is closing */
  uv_loop_t *loop;
  luv_pcall_fn pcall;
  peer_t *peers; /* open connections and pools */
  int gone;      /* the sentinel ran: the last peer_closed frees this */
} dstate_t;

/* A connection or a pool. */
struct peer_s {
  dstate_t *ds;
  uvw_conn_t *conn;
  uvw_pool_t *pool;
  char *address; /* for messages */
  int closing;
  peer_t *prev, *next;
};

/* One reply owed: the continuation and the object kept alive for it. */
typedef struct {
  dstate_t *ds;
  int cont_ref, keep_ref;
  int apply;
} req_t;

typedef struct {
  uvw_dispatch_t *d; /* NULL once closed */
} stream_box_t;

typedef struct {
  uvw_manifest_t *m; /* NULL once mounted */
} reply_box_t;

#if LUA_VERSION_NUM >= 502
#define uvwl_len(L, idx) lua_rawlen(L, idx)
#else
#define uvwl_len(L, idx) lua_objlen(L, idx)
#endif

/* The userdata at idx if its metatable is the registry's tname, else NULL
 * (luaL_testudata, which Lua 5.1 lacks). */
static void *test_udata(lua_State *L, int idx, const char *tname) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, tname);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : NULL;
}

/* ---- the state record -------------------------------------------------------- */

static void ds_maybe_free(dstate_t *ds) {
  if (ds->gone && ds->peers == NULL) free(ds);
}

static void peer_closed(void *arg) {
  peer_t *p = arg;
  dstate_t *ds = p->ds;
  if (p->prev)
    p->prev->next = p->next;
  else
    ds->peers = p->next;
  if (p->next) p->next->prev = p->prev;
  free(p->address);
  free(p);
  ds_maybe_free(ds);
}

static void peer_close(peer_t *p) {
  if (p->closing) return;
  p->closing = 1;
  if (p->pool)
    uvw_pool_close(p->pool, peer_closed, p);
  else
    uvw_conn_close(p->conn, peer_closed, p);
}

/* The Lua state closes: no reply may reach Lua any more. Close what is
 * open and let the loop finish closing it now, while the loop is still
 * luv's to run (luv's finalizer comes after: this sentinel was made later). */
static int ds_gc(lua_State *L) {
  dstate_t **slot = lua_touserdata(L, 1);
  dstate_t *ds = *slot;
  if (ds == NULL) return 0;
  *slot = NULL;
  ds->L = NULL;
  for (peer_t *p = ds->peers; p; p = p->next) peer_close(p);
  for (int i = 0; ds->peers && i < 1000; i++) uv_run(ds->loop, UV_RUN_NOWAIT);
  ds->gone = 1;
  ds_maybe_free(ds);
  return 0;
}

/* This state's record, made at the first use from luv's context. */
static dstate_t *dstate(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_DISPATCH_KEY);
  dstate_t **slot = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (slot && *slot) return *slot;
  lua_getfield(L, LUA_REGISTRYINDEX, "luv_context");
  luv_ctx_head_t *luv = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (luv == NULL || luv->loop == NULL || luv->L == NULL || luv->cb_pcall == NULL)
    uvwl_raise(L, "RuntimeError", UVW_EINVAL, "uvwool: dispatch runs on luv's loop: require \"luv\" first");
  slot = lua_newuserdata(L, sizeof *slot);
  *slot = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, ds_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  dstate_t *ds = calloc(1, sizeof *ds);
  if (ds == NULL) uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  ds->L = luv->L;
  ds->loop = luv->loop;
  ds->pcall = luv->cb_pcall;
  *slot = ds;
  lua_setfield(L, LUA_REGISTRYINDEX, UVWL_DISPATCH_KEY);
  return ds;
}

/* ---- connections and pools ------------------------------------------------------- */

static int raise_code(lua_State *L, int rc) {
  uvwl_push_error(L, rc);
  return lua_error(L);
}

static peer_t **check_peer_slot(lua_State *L, int idx) {
  peer_t **slot = test_udata(L, idx, UVWL_PEER_MT);
  if (slot == NULL) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a connection (dispatch.connect/pool) expected");
  return slot;
}

/* The open peer at idx; raises for a closed one. */
static peer_t *check_peer(lua_State *L, int idx) {
  peer_t *p = *check_peer_slot(L, idx);
  if (p == NULL || p->closing) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: the connection is closed");
  return p;
}

static int peer_gc(lua_State *L) {
  peer_t **slot = lua_touserdata(L, 1);
  if (*slot) peer_close(*slot);
  *slot = NULL;
  return 0;
}

static peer_t *new_peer(lua_State *L, const char *address) {
  dstate_t *ds = dstate(L);
  peer_t **slot = lua_newuserdata(L, sizeof *slot);
  *slot = NULL;
  luaL_getmetatable(L, UVWL_PEER_MT);
  lua_setmetatable(L, -2);
  peer_t *p = calloc(1, sizeof *p);
  char *a = p ? malloc(strlen(address) + 1) : NULL;
  if (a == NULL) {
    free(p);
    uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  }
  strcpy(a, address);
  p->ds = ds;
  p->address = a;
  *slot = p;
  return p;
}

static void link_peer(peer_t *p) {
  p->next = p->ds->peers;
  if (p->next) p->next->prev = p;
  p->ds->peers = p;
}

static void unmade_peer(lua_State *L, peer_t *p) {
  *(peer_t **)lua_touserdata(L, -1) = NULL;
  free(p->address);
  free(p);
}

/* conn_open(address, timeout_ms): a connection on luv's loop. */
int uvwl_conn_open(lua_State *L) {
  const char *address = luaL_checkstring(L, 1);
  lua_Integer ms = luaL_optinteger(L, 2, 0);
  peer_t *p = new_peer(L, address);
  int rc = uvw_conn_open(p->ds->loop, address, &p->conn);
  if (rc < 0) {
    unmade_peer(L, p);
    return raise_code(L, rc);
  }
  if (ms > 0) uvw_conn_set_dispatch_timeout(p->conn, (uint64_t)ms);
  link_peer(p);
  return 1;
}

/* pool_open({address, ...}, timeout_ms): a round-robin pool. */
int uvwl_pool_open(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer ms = luaL_optinteger(L, 2, 0);
  size_t n = uvwl_len(L, 1);
  if (n == 0 || n > 256) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a pool takes 1 to 256 addresses");
  const char *addrs[256];
  for (size_t i = 0; i < n; i++) {
    lua_rawgeti(L, 1, (int)i + 1);
    addrs[i] = lua_tostring(L, -1); /* the table keeps the string alive */
    lua_pop(L, 1);
    if (addrs[i] == NULL) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: pool addresses are strings");
  }
  peer_t *p = new_peer(L, addrs[0]);
  int rc = uvw_pool_open(p->ds->loop, addrs, n, &p->pool);
  if (rc < 0) {
    unmade_peer(L, p);
    return raise_code(L, rc);
  }
  if (ms > 0) uvw_pool_set_dispatch_timeout(p->pool, (uint64_t)ms);
  link_peer(p);
  return 1;
}

/* conn_close(c): pending dispatches fail with UVW_ECANCELED (from the
 * loop, later); a second close does nothing. */
int uvwl_conn_close(lua_State *L) {
  peer_t **slot = check_peer_slot(L, 1);
  if (*slot) peer_close(*slot);
  *slot = NULL;
  return 0;
}

/* conn_state(c): "open", "dead" (lost: new dispatches fail) or "closed";
 * and the number of dispatches waiting for a reply. */
int uvwl_conn_state(lua_State *L) {
  peer_t *p = *check_peer_slot(L, 1);
  if (p == NULL || p->closing) {
    lua_pushliteral(L, "closed");
    lua_pushinteger(L, 0);
  } else if (p->pool) {
    lua_pushliteral(L, "open");
    lua_pushinteger(L, 0);
  } else {
    lua_pushstring(L, uvw_conn_is_dead(p->conn) ? "dead" : "open");
    lua_pushinteger(L, (lua_Integer)uvw_conn_pending(p->conn));
  }
  return 2;
}

/* ---- replies -------------------------------------------------------------------- */

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
  req_t *q = lua_touserdata(L, 1);
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

static void on_reply(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg) {
  (void)d;
  req_t *q = arg;
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
  }
  free(q);
}

/* A request for the continuation at cont_idx, keeping the object at
 * keep_idx alive until the reply; NULL when out of memory. */
static req_t *new_req(lua_State *L, dstate_t *ds, int cont_idx, int keep_idx, int apply) {
  req_t *q = malloc(sizeof *q);
  if (q == NULL) return NULL;
  q->ds = ds;
  q->apply = apply;
  lua_pushvalue(L, cont_idx);
  q->cont_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, keep_idx);
  q->keep_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return q;
}

static void drop_req(lua_State *L, req_t *q) {
  luaL_unref(L, LUA_REGISTRYINDEX, q->cont_ref);
  luaL_unref(L, LUA_REGISTRYINDEX, q->keep_ref);
  free(q);
}

/* The arguments in the table at idx (fields 1..t.n) as values, in a
 * userdata array left on the stack (so a raise frees nothing by hand)
 * whose references args_unref drops. */
static uvw_value_t **check_args(lua_State *L, int idx, size_t *n_out) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "n");
  lua_Integer n = lua_isnumber(L, -1) ? lua_tointeger(L, -1) : (lua_Integer)uvwl_len(L, idx);
  lua_pop(L, 1);
  if (n < 0 || n > 4096) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a dispatch takes at most 4096 arguments");
  uvw_value_t **args = lua_newuserdata(L, sizeof *args * (size_t)(n ? n : 1));
  for (lua_Integer i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (int)i + 1);
    args[i] = uvwl_to_value(L, -1);
    if (args[i] == NULL) {
      while (i-- > 0) uvw_value_unref(args[i]);
      lua_error(L);
      return NULL;
    }
    lua_pop(L, 1);
  }
  *n_out = (size_t)n;
  return args;
}

static void args_unref(uvw_value_t **args, size_t n) {
  for (size_t i = 0; i < n; i++) uvw_value_unref(args[i]);
}

static uvw_dispatch_opts_t opts_at(lua_State *L, int idx) {
  uvw_dispatch_opts_t o = {0};
  lua_Integer ms = luaL_optinteger(L, idx, 0);
  if (ms > 0) o.dispatch_timeout_ms = (uint64_t)ms;
  return o;
}

/* dispatch(c, routine, args, cont, apply, timeout_ms): a one-shot dispatch
 * from the current context; cont(ok, value_or_error, manifest, done) runs
 * once, from the loop. Raises (nothing sent, cont never called) when the
 * dispatch cannot be made: a dead or closed connection, an argument or a
 * context that cannot be encoded. */
int uvwl_dispatch(lua_State *L) {
  peer_t *p = check_peer(L, 1);
  const char *routine = luaL_checkstring(L, 2);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  int apply = lua_toboolean(L, 5);
  uvw_dispatch_opts_t opts = opts_at(L, 6);
  size_t n = 0;
  uvw_value_t **args = check_args(L, 3, &n);
  uvw_conn_t *c = p->conn;
  if (c == NULL && (c = uvw_pool_next(p->pool)) == NULL) {
    args_unref(args, n);
    return raise_code(L, uvw_error_code(uvw_last_error()));
  }
  req_t *q = new_req(L, p->ds, 4, 1, apply);
  if (q == NULL) {
    args_unref(args, n);
    return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  }
  int rc = uvw_conn_dispatch(c, routine, args, n, &opts, on_reply, q, NULL);
  args_unref(args, n);
  if (rc < 0) {
    drop_req(L, q);
    return raise_code(L, rc);
  }
  return 0;
}

/* ---- streams -------------------------------------------------------------------- */

static stream_box_t *check_stream(lua_State *L, int idx) {
  stream_box_t *s = test_udata(L, idx, UVWL_STREAM_MT);
  if (s == NULL) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a stream (conn:stream) expected");
  return s;
}

static int stream_gc(lua_State *L) {
  stream_box_t *s = lua_touserdata(L, 1);
  uvw_dispatch_close(s->d);
  s->d = NULL;
  return 0;
}

/* stream_open(c, routine, args, timeout_ms): a streaming dispatch (the
 * Task is sent; steps follow). */
int uvwl_stream_open(lua_State *L) {
  peer_t *p = check_peer(L, 1);
  const char *routine = luaL_checkstring(L, 2);
  uvw_dispatch_opts_t opts = opts_at(L, 4);
  size_t n = 0;
  uvw_value_t **args = check_args(L, 3, &n);
  stream_box_t *s = lua_newuserdata(L, sizeof *s);
  s->d = NULL;
  luaL_getmetatable(L, UVWL_STREAM_MT);
  lua_setmetatable(L, -2);
  uvw_conn_t *c = p->conn ? p->conn : uvw_pool_next(p->pool);
  int rc = c ? uvw_conn_dispatch_stream(c, routine, args, n, &opts, &s->d) : uvw_error_code(uvw_last_error());
  args_unref(args, n);
  if (rc < 0) return raise_code(L, rc);
  return 1;
}

/* An error to throw into a routine from the Lua value at idx: an error
 * object (class, errno, message, fields) or a message. */
static uvw_error_t *error_from_lua(lua_State *L, int idx) {
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
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_DISPATCH_KEY);
  dstate_t *ds = *(dstate_t **)lua_touserdata(L, -1);
  lua_pop(L, 1);
  int is_send = strcmp(kind, "send") == 0, is_throw = strcmp(kind, "throw") == 0;
  if (!is_send && !is_throw && strcmp(kind, "next") != 0)
    return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a stream step is next, send or throw");
  uvw_value_t *v = NULL;
  uvw_error_t *e = NULL;
  if (is_send && (v = uvwl_to_value(L, 3)) == NULL) return lua_error(L);
  if (is_throw && (e = error_from_lua(L, 3)) == NULL)
    return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  req_t *q = new_req(L, ds, 4, 1, apply);
  int rc = UVW_ENOMEM;
  if (q && is_send)
    rc = uvw_dispatch_send(s->d, v, on_reply, q);
  else if (q && is_throw)
    rc = uvw_dispatch_throw(s->d, e, on_reply, q);
  else if (q)
    rc = uvw_dispatch_next(s->d, on_reply, q);
  uvw_value_unref(v);
  uvw_error_unref(e);
  if (rc < 0 && q) drop_req(L, q);
  if (q == NULL) return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  return rc < 0 ? raise_code(L, rc) : 0;
}

/* stream_close(s): ends the stream (a pending step gets UVW_ECANCELED). */
int uvwl_stream_close(lua_State *L) {
  stream_box_t *s = check_stream(L, 1);
  uvw_dispatch_close(s->d);
  s->d = NULL;
  return 0;
}

/* stream_done(s): whether the stream ended (or was closed). */
int uvwl_stream_done(lua_State *L) {
  stream_box_t *s = check_stream(L, 1);
  lua_pushboolean(L, s->d == NULL || uvw_dispatch_done(s->d));
  return 1;
}

/* apply_reply(m): mount a reply's merged context into the current one (the
 * coroutine that waited). Once; raises (context unchanged) on a guard trip. */
int uvwl_apply_reply(lua_State *L) {
  reply_box_t *b = test_udata(L, 1, UVWL_REPLY_MT);
  if (b == NULL || b->m == NULL) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: not an unused dispatch reply");
  uvw_manifest_t *m = b->m;
  b->m = NULL;
  int rc = uvw_manifest_mount(m);
  uvw_manifest_free(m);
  return rc < 0 ? raise_code(L, rc) : 0;
}

void uvwl_open_dispatch(lua_State *L) {
  luaL_newmetatable(L, UVWL_PEER_MT);
  lua_pushcfunction(L, peer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, UVWL_STREAM_MT);
  lua_pushcfunction(L, stream_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, UVWL_REPLY_MT);
  lua_pushcfunction(L, reply_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
