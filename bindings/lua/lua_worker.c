/* Hosting routines from Lua (uvwool.worker): a uvw_worker_t on luv's loop
 * whose routines are Lua handlers. The protocol, limits and options are
 * the C worker's; this file only carries steps to Lua and answers back.
 *
 * Each step of a call runs handler(call, step, value) on luv's main thread
 * through luv's cb_pcall, in the dispatch's context (the core's). The call
 * object (a userdata over a record freed by the core when the call ends)
 * keeps that context, so an answer made later from any luv callback is
 * encoded from the routine's view (the Lua layer runs the routine as a
 * task on exactly that context).
 *
 * Lifetimes: the worker record is malloc'd; it goes once the core's close
 * callback ran, its object was collected and its last call ended (a call
 * can outlive both: a routine that never answers). When the Lua state
 * closes with a worker open, its __gc closes it and runs the loop until it
 * is gone (as the dispatch state record does); calls that still arrive
 * are refused without Lua. A call record is shared by the core (until the
 * call ends) and the call object (until collected): the last frees it. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lua_dispatch.h"

#define UVWL_WORKER_MT "uvwool.Worker"
#define UVWL_CALL_MT "uvwool.Call"

typedef struct route_s route_t;

typedef struct {
  uvwl_dstate_t *ds;
  uvw_worker_t *w;
  lua_State *L; /* NULL once the Lua state is closing */
  int error_ref;
  size_t listeners;
  size_t calls;  /* live call records */
  int collected; /* the Lua object is gone */
  int closing, closed;
  route_t *routes;
} worker_t;

struct route_s {
  worker_t *wk;
  int handler_ref;
  route_t *next;
};

typedef struct {
  uvw_call_t *call; /* NULL once the call ended */
  uvw_context_t *ctx; /* the context of the latest step */
  worker_t *wk;
  int self_ref, cancel_ref;
  int holders; /* the core's call and the Lua object */
} ccall_t;

static void worker_maybe_free(worker_t *wk) {
  if (wk->closed && wk->collected && wk->calls == 0) free(wk);
}

static void call_release(ccall_t *cc) {
  if (--cc->holders > 0) return;
  worker_t *wk = cc->wk;
  free(cc);
  wk->calls--;
  worker_maybe_free(wk);
}

/* ---- calls ---------------------------------------------------------------------- */

static void call_data_free(void *data) {
  ccall_t *cc = data;
  cc->call = NULL;
  uvw_context_unref(cc->ctx);
  cc->ctx = NULL;
  lua_State *L = cc->wk->L;
  if (L) {
    luaL_unref(L, LUA_REGISTRYINDEX, cc->cancel_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, cc->self_ref); /* the object may go now */
  }
  call_release(cc);
}

static int call_gc(lua_State *L) {
  ccall_t **slot = lua_touserdata(L, 1);
  if (*slot) call_release(*slot);
  *slot = NULL;
  return 0;
}

static ccall_t *check_call(lua_State *L, int idx) {
  ccall_t **slot = uvwl_test_udata(L, idx, UVWL_CALL_MT);
  if (slot == NULL || *slot == NULL) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a routine's call object expected");
  return *slot;
}

/* The call's object, made at its first step and kept in the registry
 * until the call ends; its record. */
static ccall_t *push_call(lua_State *L, uvw_call_t *call, route_t *r) {
  ccall_t *cc = uvw_call_data(call);
  if (cc) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, cc->self_ref);
    return cc;
  }
  ccall_t **slot = lua_newuserdata(L, sizeof *slot);
  *slot = NULL;
  luaL_getmetatable(L, UVWL_CALL_MT);
  lua_setmetatable(L, -2);
  cc = calloc(1, sizeof *cc);
  if (cc == NULL) uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  cc->call = call;
  cc->wk = r->wk;
  cc->cancel_ref = LUA_NOREF;
  cc->holders = 2;
  r->wk->calls++;
  *slot = cc;
  lua_pushvalue(L, -1);
  cc->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uvw_call_set_data(call, cc, call_data_free);
  return cc;
}

static int push_step_value(lua_State *L, uvw_call_t *call) {
  switch (uvw_call_step(call)) {
  case UVW_STEP_SEND:
    lua_pushliteral(L, "send");
    if (!uvwl_push_value(L, uvw_call_sent(call))) lua_error(L);
    return 2;
  case UVW_STEP_THROW: {
    const uvw_error_t *e = uvw_call_thrown(call);
    lua_pushliteral(L, "throw");
    uvwl_push_error_detail(L, e, e ? uvw_error_code(e) : UVW_ECANCELED);
    return 2;
  }
  default:
    lua_pushliteral(L, "next");
    return 1;
  }
}

/* Through cb_pcall: handler(call, step, value). A handler that fails
 * before answering (its routine could not even start) answers with its
 * error, so the caller is not left waiting. */
static int step_trampoline(lua_State *L) {
  route_t *r = lua_touserdata(L, 1);
  uvw_call_t *call = lua_touserdata(L, 2);
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->handler_ref);
  ccall_t *cc = push_call(L, call, r);
  uvw_context_t *now = uvw_context_ref(uvw_context_current());
  uvw_context_unref(cc->ctx);
  cc->ctx = now;
  int n = push_step_value(L, call);
  if (lua_pcall(L, 1 + n, 0, 0) != LUA_OK && cc->call) {
    uvw_error_t *e = uvwl_error_from_lua(L, -1);
    int rc = uvw_call_raise(cc->call, e);
    uvw_error_unref(e);
    if (rc < 0) return lua_error(L); /* the step was answered: luv's handler reports it */
  }
  return 0;
}

/* The call could not reach Lua (state closing, the handler failed before
 * answering): raise so the caller is not left waiting. */
static void refuse(uvw_call_t *call, const char *why) {
  uvw_error_t *e = uvw_error_new("WoolError", UVW_ECONNRESET, why);
  uvw_call_raise(call, e);
  uvw_error_unref(e);
}

static void route(uvw_call_t *call, void *arg) {
  route_t *r = arg;
  lua_State *L = r->wk->L;
  if (L == NULL) {
    refuse(call, "uvwool: the Lua worker is closing");
    return;
  }
  int top = lua_gettop(L);
  lua_pushcfunction(L, step_trampoline);
  lua_pushlightuserdata(L, r);
  lua_pushlightuserdata(L, call);
  r->wk->ds->pcall(L, 2, 0, 0);
  lua_settop(L, top);
}

/* call_answer(call, kind, value): "yield", "return" or "raise" (value an
 * error object or message), made in the context of the call's latest step
 * when another is current. true; false and the error when the call is
 * over (nil) or the core refused the answer (the caller then gets that
 * error, e.g. a ChainContention of the routine's context). */
int uvwl_call_answer(lua_State *L) {
  ccall_t *cc = check_call(L, 1);
  const char *kind = luaL_checkstring(L, 2);
  if (cc->call == NULL) {
    lua_pushboolean(L, 0);
    return 1;
  }
  uvw_value_t *v = NULL;
  uvw_error_t *e = NULL;
  int raise = kind[0] == 'r' && kind[1] == 'a';
  if (raise) {
    e = uvwl_error_from_lua(L, 3);
    if (e == NULL) return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  } else if ((v = uvwl_to_value(L, 3)) == NULL) {
    return lua_error(L);
  }
  int entered = cc->ctx && uvw_context_current() != cc->ctx && uvw_context_enter(cc->ctx) == 0;
  uvw_context_t *ctx = entered ? uvw_context_ref(cc->ctx) : NULL;
  int rc;
  if (raise)
    rc = uvw_call_raise(cc->call, e);
  else if (kind[0] == 'y')
    rc = uvw_call_yield(cc->call, v);
  else
    rc = uvw_call_return(cc->call, v);
  if (rc < 0) uvwl_push_error(L, rc);
  if (entered) uvw_context_exit(ctx);
  uvw_context_unref(ctx);
  uvw_error_unref(e);
  uvw_value_unref(v);
  if (rc < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* call_args(call): the arguments as a list with n. */
int uvwl_call_args(lua_State *L) {
  ccall_t *cc = check_call(L, 1);
  size_t n = cc->call ? uvw_call_arg_count(cc->call) : 0;
  lua_createtable(L, (int)n, 1);
  for (size_t i = 0; i < n; i++) {
    if (!uvwl_push_value(L, uvw_call_arg(cc->call, i))) return lua_error(L);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, -2, "n");
  return 1;
}

/* call_info(call): routine name (nil once over), cancelled, the handshake
 * bound in ms and whether the caller sent it. */
int uvwl_call_info(lua_State *L) {
  ccall_t *cc = check_call(L, 1);
  if (cc->call == NULL) {
    lua_pushnil(L);
    lua_pushboolean(L, 1);
    return 2;
  }
  uint64_t ms = 0;
  int sent = uvw_call_dispatch_timeout(cc->call, &ms);
  lua_pushstring(L, uvw_call_routine(cc->call));
  lua_pushboolean(L, uvw_call_cancelled(cc->call));
  lua_pushinteger(L, (lua_Integer)ms);
  lua_pushboolean(L, sent);
  return 4;
}

static int cancel_trampoline(lua_State *L) {
  ccall_t *cc = lua_touserdata(L, 1);
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, cc->cancel_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, cc->self_ref);
  lua_call(L, 1, 0);
  return 0;
}

/* The caller cancelled or went away while a step runs: the Lua hook, or
 * (the state closing) an answer that ends the call. */
static void on_cancel(uvw_call_t *call, void *arg) {
  ccall_t *cc = arg;
  worker_t *wk = cc->wk;
  if (wk->L == NULL) {
    refuse(call, "uvwool: the routine was cancelled");
    return;
  }
  int top = lua_gettop(wk->L);
  lua_pushcfunction(wk->L, cancel_trampoline);
  lua_pushlightuserdata(wk->L, cc);
  wk->ds->pcall(wk->L, 1, 0, 0);
  lua_settop(wk->L, top);
}

/* call_on_cancel(call, fn): fn(call) runs once from the loop when the
 * caller cancels or goes away while the current step runs. */
int uvwl_call_on_cancel(lua_State *L) {
  ccall_t *cc = check_call(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (cc->call == NULL) return 0;
  luaL_unref(L, LUA_REGISTRYINDEX, cc->cancel_ref);
  lua_pushvalue(L, 2);
  cc->cancel_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  uvw_call_on_cancel(cc->call, on_cancel, cc);
  return 0;
}

/* ---- workers -------------------------------------------------------------------- */

static worker_t *check_worker(lua_State *L, int idx) {
  worker_t **slot = uvwl_test_udata(L, idx, UVWL_WORKER_MT);
  if (slot == NULL) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a worker (dispatch.worker) expected");
  if (*slot == NULL || (*slot)->closing) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: the worker is closed");
  return *slot;
}

static int worker_rc(lua_State *L, int rc) {
  if (rc < 0) return uvwl_raise_code(L, rc);
  return 0;
}

static void worker_closed(void *arg) {
  worker_t *wk = arg;
  route_t *r = wk->routes;
  while (r) {
    route_t *next = r->next;
    if (wk->L) luaL_unref(wk->L, LUA_REGISTRYINDEX, r->handler_ref);
    free(r);
    r = next;
  }
  wk->routes = NULL;
  if (wk->L) luaL_unref(wk->L, LUA_REGISTRYINDEX, wk->error_ref);
  wk->closed = 1;
  worker_maybe_free(wk);
}

static void worker_close(worker_t *wk) {
  if (wk->closing) return;
  wk->closing = 1;
  uvw_worker_close(wk->w, worker_closed, wk);
}

/* The Lua state closes: finish closing now, while the loop is still luv's. */
static int worker_gc(lua_State *L) {
  worker_t **slot = lua_touserdata(L, 1);
  worker_t *wk = *slot;
  if (wk == NULL) return 0;
  *slot = NULL;
  worker_close(wk);
  for (int i = 0; !wk->closed && i < 1000; i++) uv_run(wk->ds->loop, UV_RUN_NOWAIT);
  wk->L = NULL; /* from now on nothing reaches Lua */
  wk->collected = 1;
  worker_maybe_free(wk);
  return 0;
}

static int error_trampoline(lua_State *L) {
  worker_t *wk = lua_touserdata(L, 1);
  const uvw_error_t *e = lua_touserdata(L, 2);
  lua_settop(L, 0);
  lua_rawgeti(L, LUA_REGISTRYINDEX, wk->error_ref);
  uvwl_push_error_detail(L, e, e ? uvw_error_code(e) : 0);
  lua_call(L, 1, 0);
  return 0;
}

static void on_worker_error(uvw_worker_t *w, const uvw_error_t *e, void *arg) {
  (void)w;
  worker_t *wk = arg;
  if (wk->L == NULL || wk->error_ref == LUA_NOREF) return;
  int top = lua_gettop(wk->L);
  lua_pushcfunction(wk->L, error_trampoline);
  lua_pushlightuserdata(wk->L, wk);
  lua_pushlightuserdata(wk->L, (void *)e);
  wk->ds->pcall(wk->L, 2, 0, 0);
  lua_settop(wk->L, top);
}

/* A caller hanging up mid-write must be a write error, not the death of
 * the process (uvwool-worker ignores SIGPIPE too). A handler the program
 * installed is left alone. */
static void ignore_sigpipe(void) {
  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
}

/* worker_open(): a worker on luv's loop. */
int uvwl_worker_open(lua_State *L) {
  uvwl_dstate_t *ds = uvwl_dispatch_state(L);
  ignore_sigpipe();
  worker_t **slot = lua_newuserdata(L, sizeof *slot);
  *slot = NULL;
  luaL_getmetatable(L, UVWL_WORKER_MT);
  lua_setmetatable(L, -2);
  worker_t *wk = calloc(1, sizeof *wk);
  if (wk == NULL) return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  int rc = uvw_worker_open(ds->loop, &wk->w);
  if (rc < 0) {
    free(wk);
    return uvwl_raise_code(L, rc);
  }
  wk->ds = ds;
  wk->L = ds->L;
  wk->error_ref = LUA_NOREF;
  *slot = wk;
  return 1;
}

/* worker_register(w, name, stream, handler). */
int uvwl_worker_register(lua_State *L) {
  worker_t *wk = check_worker(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int stream = lua_toboolean(L, 3);
  luaL_checktype(L, 4, LUA_TFUNCTION);
  route_t *r = calloc(1, sizeof *r);
  if (r == NULL) return uvwl_raise(L, "MemoryError", UVW_ENOMEM, "uvwool: out of memory");
  int rc = uvw_worker_register(wk->w, name, route, r, stream ? UVW_ROUTINE_STREAM : 0);
  if (rc < 0) {
    free(r);
    return uvwl_raise_code(L, rc);
  }
  r->wk = wk;
  lua_pushvalue(L, 4);
  r->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  r->next = wk->routes;
  wk->routes = r;
  return 0;
}

/* worker_listen(w, address): the address as bound. */
int uvwl_worker_listen(lua_State *L) {
  worker_t *wk = check_worker(L, 1);
  worker_rc(L, uvw_worker_listen(wk->w, luaL_checkstring(L, 2)));
  char buf[512];
  worker_rc(L, uvw_worker_address(wk->w, wk->listeners++, buf, sizeof buf));
  lua_pushstring(L, buf);
  return 1;
}

static size_t opt_size(lua_State *L, int t, const char *name) {
  lua_getfield(L, t, name);
  lua_Integer v = lua_isnil(L, -1) ? 0 : luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  if (v < 0) uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a worker limit is a count >= 0");
  return (size_t)v;
}

#define LIMIT_FIELDS(X)                                                                            \
  X(max_connections) X(max_dispatches) X(max_inflight_bytes) X(max_stubs) X(max_chains)           \
      X(write_high_water) X(frame_timeout_ms) X(idle_timeout_ms)

/* worker_set_limits(w, {field = n, ...}): unnamed fields take the default. */
int uvwl_worker_set_limits(lua_State *L) {
  worker_t *wk = check_worker(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  uvw_worker_limits_t l = {0};
#define SET(f) l.f = opt_size(L, 2, #f);
  LIMIT_FIELDS(SET)
#undef SET
  return worker_rc(L, uvw_worker_set_limits(wk->w, &l));
}

static void push_sizes(lua_State *L, const char *const *names, const lua_Integer *vals, int n) {
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    lua_pushinteger(L, vals[i]);
    lua_setfield(L, -2, names[i]);
  }
}

/* worker_limits(w): the limits in force. */
int uvwl_worker_limits(lua_State *L) {
  worker_t *wk = check_worker(L, 1);
  uvw_worker_limits_t l;
  worker_rc(L, uvw_worker_get_limits(wk->w, &l));
#define NAME(f) #f,
#define VAL(f) (lua_Integer)l.f,
  const char *names[] = {LIMIT_FIELDS(NAME)};
  lua_Integer vals[] = {LIMIT_FIELDS(VAL)};
#undef NAME
#undef VAL
  push_sizes(L, names, vals, (int)(sizeof vals / sizeof vals[0]));
  return 1;
}

#define STAT_FIELDS(X)                                                                             \
  X(connections) X(dispatches) X(inflight_bytes) X(read_buffer_bytes) X(write_queue_bytes)         \
      X(paused_peers) X(refused_connections) X(timed_out_peers) X(max_call_chains)

/* worker_stats(w): the counters. */
int uvwl_worker_stats(lua_State *L) {
  worker_t *wk = check_worker(L, 1);
  uvw_worker_stats_t s;
  worker_rc(L, uvw_worker_stats(wk->w, &s));
#define NAME(f) #f,
#define VAL(f) (lua_Integer)s.f,
  const char *names[] = {STAT_FIELDS(NAME)};
  lua_Integer vals[] = {STAT_FIELDS(VAL)};
#undef NAME
#undef VAL
  push_sizes(L, names, vals, (int)(sizeof vals / sizeof vals[0]));
  return 1;
}

/* worker_option(w, name, value): socket_mode, socket_group, allow_uid,
 * allow_gid, allow_remote, dispatch_timeout, on_error. */
int uvwl_worker_option(lua_State *L) {
  worker_t *wk = check_worker(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int rc = 0;
  if (strcmp(name, "on_error") == 0) {
    luaL_checktype(L, 3, LUA_TFUNCTION);
    luaL_unref(L, LUA_REGISTRYINDEX, wk->error_ref);
    lua_pushvalue(L, 3);
    wk->error_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    uvw_worker_on_error(wk->w, on_worker_error, wk);
  } else if (strcmp(name, "allow_remote") == 0) {
    rc = uvw_worker_set_allow_remote(wk->w, lua_toboolean(L, 3));
  } else {
    lua_Integer v = luaL_checkinteger(L, 3);
    if (strcmp(name, "socket_mode") == 0)
      rc = v < 0 ? UVW_EINVAL : uvw_worker_set_socket_mode(wk->w, (unsigned)v);
    else if (strcmp(name, "socket_group") == 0)
      rc = uvw_worker_set_socket_group(wk->w, (long)v);
    else if (strcmp(name, "allow_uid") == 0 || strcmp(name, "allow_gid") == 0)
      rc = v < 0 || v > UINT32_MAX ? UVW_EINVAL
           : name[6] == 'u'        ? uvw_worker_allow_uid(wk->w, (uint32_t)v)
                                   : uvw_worker_allow_gid(wk->w, (uint32_t)v);
    else if (strcmp(name, "dispatch_timeout") == 0 && v > 0)
      uvw_worker_set_dispatch_timeout(wk->w, (uint64_t)v);
    else
      return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: unknown worker option or bad value");
  }
  if (rc < 0) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: bad worker option value");
  return 0;
}

/* worker_close(w): stop listening and drop every connection; a second
 * close does nothing. */
int uvwl_worker_close(lua_State *L) {
  worker_t **slot = uvwl_test_udata(L, 1, UVWL_WORKER_MT);
  if (slot == NULL) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: a worker (dispatch.worker) expected");
  if (*slot) worker_close(*slot);
  return 0;
}

void uvwl_open_workers(lua_State *L) {
  luaL_newmetatable(L, UVWL_WORKER_MT);
  lua_pushcfunction(L, worker_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, UVWL_CALL_MT);
  lua_pushcfunction(L, call_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
}
