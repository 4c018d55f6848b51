/* Dispatch from Lua to a uvwool-worker, on luv's loop (uvwool.dispatch):
 * the state record, connections and pools, one-shot dispatches. Replies
 * are lua_reply.c's, streams lua_stream.c's.
 *
 * The loop is luv's own: luv keeps its luv_ctx_t as a userdata in the
 * registry under "luv_context", the loop pointer first, the main Lua thread
 * second and its callback pcall third (the struct is the same from luv
 * 1.44.2 to 1.52).
 *
 * Lifetimes: a connection or pool record is malloc'd and freed by the
 * core's close callback; a pending dispatch holds registry references to
 * its continuation and to the connection object, so neither is collected
 * while a reply is owed. When the Lua state closes, the state record's
 * sentinel closes what is still open and runs the loop until those
 * handles are gone, before luv's own loop finalizer (which closes every
 * handle of the loop as if it were luv's) can see them. */
#include <stdlib.h>

#include "lua_dispatch.h"

typedef struct uvwl_peer_s peer_t;

#define UVWL_PEER_MT "uvwool.Conn"
#define UVWL_PENDING_MT "uvwool.PendingDispatch"

/* The head of luv's luv_ctx_t: only these fields are read. */
typedef struct {
  uv_loop_t *loop;
  lua_State *L;
  uvwl_luv_pcall_fn cb_pcall;
} luv_ctx_head_t;

/* A connection or a pool. */
struct uvwl_peer_s {
  uvwl_dstate_t *ds;
  uvw_conn_t *conn;
  uvw_pool_t *pool;
  int closing;
  peer_t *prev, *next;
};

#if LUA_VERSION_NUM >= 502
#define uvwl_len(L, idx) lua_rawlen(L, idx)
#else
#define uvwl_len(L, idx) lua_objlen(L, idx)
#endif

void *uvwl_test_udata(lua_State *L, int idx, const char *tname) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  luaL_getmetatable(L, tname);
  int same = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return same ? p : NULL;
}


/* ---- the state record -------------------------------------------------------- */

static void ds_maybe_free(uvwl_dstate_t *ds) {
  if (ds->gone && ds->peers == NULL) free(ds);
}

static void peer_closed(void *arg) {
  peer_t *p = arg;
  uvwl_dstate_t *ds = p->ds;
  if (p->prev)
    p->prev->next = p->next;
  else
    ds->peers = p->next;
  if (p->next) p->next->prev = p->prev;
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
  uvwl_dstate_t **slot = lua_touserdata(L, 1);
  uvwl_dstate_t *ds = *slot;
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
uvwl_dstate_t *uvwl_dispatch_state(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_DISPATCH_KEY);
  uvwl_dstate_t **slot = lua_touserdata(L, -1);
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
  uvwl_dstate_t *ds = calloc(1, sizeof *ds);
  if (ds == NULL) uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  ds->L = luv->L;
  ds->loop = luv->loop;
  ds->pcall = luv->cb_pcall;
  *slot = ds;
  lua_setfield(L, LUA_REGISTRYINDEX, UVWL_DISPATCH_KEY);
  return ds;
}

/* ---- connections and pools ------------------------------------------------------- */

int uvwl_raise_code(lua_State *L, int rc) {
  uvwl_push_error(L, rc);
  return lua_error(L);
}

static peer_t **check_peer_slot(lua_State *L, int idx) {
  peer_t **slot = uvwl_test_udata(L, idx, UVWL_PEER_MT);
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

static peer_t *new_peer(lua_State *L) {
  uvwl_dstate_t *ds = uvwl_dispatch_state(L);
  peer_t **slot = lua_newuserdata(L, sizeof *slot);
  *slot = NULL;
  luaL_getmetatable(L, UVWL_PEER_MT);
  lua_setmetatable(L, -2);
  peer_t *p = calloc(1, sizeof *p);
  if (p == NULL) uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  p->ds = ds;
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
  free(p);
}

/* The code of the failure uvw_pool_next reported with its NULL. */
static int pool_next_failure(void) {
  const uvw_error_t *e = uvw_last_error();
  return e ? uvw_error_code(e) : UVW_ECONNRESET;
}

uvw_conn_t *uvwl_peer_conn(lua_State *L, int idx) {
  peer_t *p = check_peer(L, idx);
  if (p->conn) return p->conn;
  uvw_conn_t *c = uvw_pool_next(p->pool);
  if (c == NULL) uvwl_raise_code(L, pool_next_failure());
  return c;
}

/* conn_open(address, timeout_ms): a connection on luv's loop. */
int uvwl_conn_open(lua_State *L) {
  const char *address = luaL_checkstring(L, 1);
  lua_Integer ms = luaL_optinteger(L, 2, 0);
  peer_t *p = new_peer(L);
  int rc = uvw_conn_open(p->ds->loop, address, &p->conn);
  if (rc < 0) {
    unmade_peer(L, p);
    return uvwl_raise_code(L, rc);
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
    /* Strings only: the table keeps them alive once popped (a number's
     * string form would not be). */
    addrs[i] = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1);
    if (addrs[i] == NULL) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: pool addresses are strings");
  }
  peer_t *p = new_peer(L);
  int rc = uvw_pool_open(p->ds->loop, addrs, n, &p->pool);
  if (rc < 0) {
    unmade_peer(L, p);
    return uvwl_raise_code(L, rc);
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

/* The arguments in the table at idx (fields 1..t.n) as values, in a
 * userdata array left on the stack (so a raise frees nothing by hand)
 * whose references args_unref drops. */
uvw_value_t **uvwl_check_args(lua_State *L, int idx, size_t *n_out) {
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

void uvwl_args_unref(uvw_value_t **args, size_t n) {
  for (size_t i = 0; i < n; i++) uvw_value_unref(args[i]);
}

uvw_dispatch_opts_t uvwl_dispatch_opts(lua_State *L, int idx) {
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
  uvw_conn_t *c = uvwl_peer_conn(L, 1);
  const char *routine = luaL_checkstring(L, 2);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  int apply = lua_toboolean(L, 5);
  uvw_dispatch_opts_t opts = uvwl_dispatch_opts(L, 6);
  size_t n = 0;
  uvw_value_t **args = uvwl_check_args(L, 3, &n);
  uvwl_req_t *q = uvwl_req_new(L, uvwl_dispatch_state(L), 4, 1, apply);
  if (q == NULL) {
    uvwl_args_unref(args, n);
    return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  }
  uvw_dispatch_t *d = NULL;
  int rc = uvw_conn_dispatch(c, routine, args, n, &opts, uvwl_on_reply, q, &d);
  uvwl_args_unref(args, n);
  if (rc < 0) {
    uvwl_req_drop(L, q);
    return uvwl_raise_code(L, rc);
  }
  /* The cancel handle; the reply never runs inside uvw_conn_dispatch, so
   * it is in place before it can be cleared. */
  uvw_dispatch_t **h = lua_newuserdata(L, sizeof *h);
  *h = d;
  luaL_getmetatable(L, UVWL_PENDING_MT);
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  q->handle_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  q->handle = h;
  return 1;
}

/* dispatch_cancel(h): cancel the one-shot dispatch of handle h (from
 * dispatch). true when this decided its reply (UVW_ECANCELED, nothing
 * merged, the worker told; the continuation runs later from the loop),
 * false when it was already answered, timed out or cancelled. */
int uvwl_dispatch_cancel(lua_State *L) {
  uvw_dispatch_t **h = luaL_checkudata(L, 1, UVWL_PENDING_MT);
  lua_pushboolean(L, *h != NULL && uvw_dispatch_cancel(*h) == 0);
  return 1;
}

void uvwl_open_dispatch(lua_State *L) {
  luaL_newmetatable(L, UVWL_PENDING_MT);
  lua_pop(L, 1);
  luaL_newmetatable(L, UVWL_PEER_MT);
  lua_pushcfunction(L, peer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  uvwl_open_streams(L);
  uvwl_open_replies(L);
  uvwl_open_workers(L);
}
