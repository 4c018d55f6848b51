/* Shared helpers of the Lua module uvwool_core: the value conversions, error
 * objects, runtime tasks for coroutines and the capture closures. One build
 * per Lua ABI (5.4 and 5.1/LuaJIT): everything version-specific is here. */
#ifndef UVWOOL_LUA_H
#define UVWOOL_LUA_H

#include <lauxlib.h>
#include <lua.h>

#include "uvwool.h"

#ifndef LUA_OK
#define LUA_OK 0
#endif

/* Registry keys (strings: unique to uvwool, shared by every coroutine). */
#define UVWL_ERROR_MT "uvwool.Error"
#define UVWL_STATE_KEY "uvwool.state"
#define UVWL_MISSING_KEY "uvwool.MISSING"

/* ---- module set-up (lua_values.c, lua_tasks.c) ---- */
/* Create this Lua state's record, MISSING and the error metatable. Raises
 * on allocation failure. Call once per state from luaopen. */
void uvwl_open_state(lua_State *L);
/* Create the task table; install the resume hook into coroutine.resume. */
void uvwl_open_tasks(lua_State *L);

/* ---- errors ---- */
/* Push the error object for the failed call that returned `code`, reading
 * uvw_last_error() at once. */
void uvwl_push_error(lua_State *L, int code);
/* Push the error object for detail e (NULL: only code is known), with its
 * fields and its causes (err.cause). */
void uvwl_push_error_detail(lua_State *L, const uvw_error_t *e, int code);
/* Push an error object of class `kind` (a name of the error tree). */
void uvwl_push_new_error(lua_State *L, const char *kind, int code, const char *message);
/* Push an error and raise it. Never returns. */
int uvwl_raise(lua_State *L, const char *kind, int code, const char *message);

/* A native's return of a string the core made (text, freed here), or the
 * raise of rc when the core failed. */
int uvwl_return_text(lua_State *L, int rc, char *text);

/* ---- values ---- */
/* Lua value at idx -> new reference. Tables, functions, userdata and threads
 * become opaque values of this Lua state. On failure pushes an error object
 * and returns NULL. */
uvw_value_t *uvwl_to_value(lua_State *L, int idx);
/* Push v (NULL is nil). Returns 0 and pushes an error object for a value
 * Lua cannot hold here (an opaque value of another state or type). */
int uvwl_push_value(lua_State *L, const uvw_value_t *v);

/* ---- natives (registered by the SWIG module) ---- */
int uvwl_context_run(lua_State *L);
int uvwl_chain_id(lua_State *L);
int uvwl_error_new(lua_State *L);
int uvwl_token_old_value(lua_State *L);
int uvwl_task_coroutine(lua_State *L);
int uvwl_task_id(lua_State *L);
int uvwl_capture(lua_State *L);
int uvwl_wrap(lua_State *L);
int uvwl_cfunction_key(lua_State *L);
int uvwl_fork_text(lua_State *L);
int uvwl_run_in_text(lua_State *L);
int uvwl_interposed(lua_State *L);
/* lua_dispatch.c */
void uvwl_open_dispatch(lua_State *L);
int uvwl_conn_open(lua_State *L);
int uvwl_pool_open(lua_State *L);
int uvwl_conn_close(lua_State *L);
int uvwl_conn_state(lua_State *L);
int uvwl_dispatch(lua_State *L);
int uvwl_dispatch_cancel(lua_State *L);
int uvwl_stream_open(lua_State *L);
int uvwl_stream_step(lua_State *L);
int uvwl_stream_close(lua_State *L);
int uvwl_stream_done(lua_State *L);
int uvwl_apply_reply(lua_State *L);
/* lua_worker.c */
int uvwl_worker_open(lua_State *L);
int uvwl_worker_register(lua_State *L);
int uvwl_worker_listen(lua_State *L);
int uvwl_worker_set_limits(lua_State *L);
int uvwl_worker_limits(lua_State *L);
int uvwl_worker_stats(lua_State *L);
int uvwl_worker_option(lua_State *L);
int uvwl_worker_close(lua_State *L);
int uvwl_call_answer(lua_State *L);
int uvwl_call_args(lua_State *L);
int uvwl_call_info(lua_State *L);
int uvwl_call_on_cancel(lua_State *L);
/* lua_baggage.c */
int uvwl_baggage_header(lua_State *L);
int uvwl_baggage_mount(lua_State *L);

#endif
