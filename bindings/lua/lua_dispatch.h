/* Private to uvwool_core's dispatch (lua_dispatch.c: the state record,
 * connections and one-shot dispatches; lua_reply.c: replies and their
 * continuations; lua_stream.c: streams). */
#ifndef UVWOOL_LUA_DISPATCH_H
#define UVWOOL_LUA_DISPATCH_H

#include "uvwool_lua.h"

#define UVWL_DISPATCH_KEY "uvwool.dispatch"

/* luv's luv_CFpcall: its cb_pcall, through which replies reach Lua. */
typedef int (*uvwl_luv_pcall_fn)(lua_State *L, int nargs, int nresults, int flags);

/* One per Lua state that dispatched. */
typedef struct {
  lua_State *L; /* luv's main thread; NULL once the state is closing */
  uv_loop_t *loop;
  uvwl_luv_pcall_fn pcall;
  struct uvwl_peer_s *peers; /* open connections and pools */
  int gone;                  /* the sentinel ran: the last peer_closed frees this */
} uvwl_dstate_t;

/* One reply owed: the continuation and the object kept alive for it. */
typedef struct {
  uvwl_dstate_t *ds;
  int cont_ref, keep_ref;
  int apply; /* hand the continuation the merged context to mount */
  /* A one-shot's cancel handle (a userdata holding the dispatch, cleared
   * when the reply runs), kept alive by handle_ref until then; NULL for none. */
  uvw_dispatch_t **handle;
  int handle_ref;
} uvwl_req_t;

/* This state's record, made at the first use from luv's context; raises
 * when luv is not loaded. */
uvwl_dstate_t *uvwl_dispatch_state(lua_State *L);
/* The connection of the open connection or pool object at idx (a pool's
 * next member); raises for a closed one or anything else. */
uvw_conn_t *uvwl_peer_conn(lua_State *L, int idx);
/* The userdata at idx if its metatable is the registry's tname, else NULL
 * (luaL_testudata, which Lua 5.1 lacks). */
void *uvwl_test_udata(lua_State *L, int idx, const char *tname);
/* Push the error object for rc and raise it. */
int uvwl_raise_code(lua_State *L, int rc);
/* The arguments in the table at idx (1..t.n) as new references, in a
 * userdata left on the stack; raises on a value with no uvwool form. */
uvw_value_t **uvwl_check_args(lua_State *L, int idx, size_t *n_out);
void uvwl_args_unref(uvw_value_t **args, size_t n);
/* Dispatch options from the timeout (ms, nil or 0: the default) at idx. */
uvw_dispatch_opts_t uvwl_dispatch_opts(lua_State *L, int idx);

/* A request for the continuation at cont_idx, keeping the object at
 * keep_idx alive until the reply; NULL when out of memory. */
uvwl_req_t *uvwl_req_new(lua_State *L, uvwl_dstate_t *ds, int cont_idx, int keep_idx, int apply);
/* Drop a request whose dispatch could not be made. */
void uvwl_req_drop(lua_State *L, uvwl_req_t *q);
/* The core's reply callback for a request: calls
 * cont(ok, value_or_error, merged, done) through luv's cb_pcall. */
void uvwl_on_reply(uvw_dispatch_t *d, const uvw_reply_t *r, void *arg);

/* An error for the core (new reference, NULL when out of memory) from the
 * Lua value at idx: an error object (class, errno, message, fields) or a
 * message. */
uvw_error_t *uvwl_error_from_lua(lua_State *L, int idx);

void uvwl_open_replies(lua_State *L);
void uvwl_open_workers(lua_State *L);
void uvwl_open_streams(lua_State *L);

#endif
