/* uvwool_core for Lua: the typemaps and hand-written entry points over the
 * language-neutral interface (bindings/uvwool.i). Built once per Lua ABI
 * (5.4, and 5.1 for LuaJIT) from this file; uvwool_lua.h holds what
 * differs between them.
 *
 * Most functions are wrapped directly; typemaps do the work:
 *   - Lua values <-> uvw_value_t* (lua_values.c: nil, boolean, integer,
 *     float, string natively; any other Lua value as an opaque value of the
 *     state);
 *   - an `int` status return of a fallible call raises a uvwool error object
 *     (a table {class=, code=, errno=, message=, fields=}) instead of being
 *     returned;
 *   - out-parameters (uvw_var_t **, uvw_token_t **, uvw_value_t **) become
 *     return values;
 *   - tokens and contexts are SWIG classes whose destructor runs from Lua's
 *     GC, so Lua owns them.
 * Entry points that call back into Lua or take Lua-only arguments are
 * hand-written (%native): a Lua error must never unwind through uvwool's
 * frames, so each of them pcalls and raises again once uvwool is left.
 * Coroutine tasks and capture closures are in lua_tasks.c;
 * bindings/lua/uvwool.lua puts the idiomatic layer on top. */
%module uvwool_core

%{
#include "uvwool_lua.h"

/* The SWIG runtime's type check is only visible in this file: natives
 * that take a SWIG object live here, the rest in lua_values.c/lua_tasks.c. */
static void *uvwl_check_swig(lua_State *L, int idx, swig_type_info *type, const char *what) {
  void *p = NULL;
  if (!SWIG_IsOK(SWIG_ConvertPtr(L, idx, &p, type, 0)) || p == NULL) {
    lua_pushfstring(L, "uvwool: bad argument #%d (%s expected, got %s)", idx, what, luaL_typename(L, idx));
    uvwl_raise(L, "ValueError", UVW_EINVAL, lua_tostring(L, -1));
  }
  return p;
}

struct uvwl_run {
  lua_State *L;
  int nargs;
  int status;
};

static void uvwl_run_trampoline(void *arg) {
  struct uvwl_run *r = arg;
  /* pcall: a Lua error must not longjmp over uvw_context_run's exit. */
  r->status = lua_pcall(r->L, r->nargs, LUA_MULTRET, 0);
}

/* context_run(ctx, fn, ...): fn(...) inside ctx; returns fn's results. */
int uvwl_context_run(lua_State *L) {
  uvw_context_t *ctx = uvwl_check_swig(L, 1, SWIGTYPE_p_uvw_context_s, "uvwool context");
  if (lua_type(L, 2) != LUA_TFUNCTION) return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: run expects a function");

  struct uvwl_run r = {L, lua_gettop(L) - 2, LUA_OK};
  int rc = uvw_context_run(ctx, uvwl_run_trampoline, &r);
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  if (r.status != LUA_OK) return lua_error(L); /* fn's error, now that ctx is left */
  return lua_gettop(L) - 1; /* everything above ctx is fn's results */
}

/* token_old_value(tok): the value before the set, or MISSING. */
static int uvwl_token_old_value_native(lua_State *L) {
  uvw_token_t *tok = uvwl_check_swig(L, 1, SWIGTYPE_p_uvw_token_s, "uvwool token");
  if (!uvwl_push_value(L, uvw_token_old_value(tok))) return lua_error(L);
  return 1;
}

/* token_used(tok): whether reset consumed it. */
static int uvwl_token_used_native(lua_State *L) {
  uvw_token_t *tok = uvwl_check_swig(L, 1, SWIGTYPE_p_uvw_token_s, "uvwool token");
  lua_pushboolean(L, uvw_token_used(tok));
  return 1;
}

/* chain_id(): the current context's chain id (32 hex digits), nil if unarmed. */
int uvwl_chain_id(lua_State *L) {
  char id[33];
  if (uvw_context_chain_id(uvw_context_current(), id) < 0) return 0;
  lua_pushstring(L, id);
  return 1;
}

/* The getter of one variable: get(self[, fallback]) with the variable as
 * upvalue 1 and its ContextVar table as upvalue 2, so var:get() costs one C
 * call (no SWIG pointer check, no Lua layer, no conversion of fallback). */
/* A getter's last string read (upvalue 3; its Lua string is upvalue 4).
 * Values are immutable and the reference held keeps the address from being
 * reused, so the same pointer means the same bytes: a repeated read pushes
 * the Lua string it made before instead of hashing and interning the bytes
 * again. The price: that value stays alive until the next read of this
 * variable returns another string, or the ContextVar is collected. */
#define UVWL_SEEN_MT "uvwool.SeenValue"
typedef struct {
  uvw_value_t *value;
} uvwl_seen_t;

static int uvwl_seen_gc(lua_State *L) {
  uvwl_seen_t *seen = lua_touserdata(L, 1);
  uvw_value_unref(seen->value);
  seen->value = NULL;
  return 0;
}

static int uvwl_var_get(lua_State *L) {
  uvw_var_t *var = lua_touserdata(L, lua_upvalueindex(1));
  if (!lua_rawequal(L, 1, lua_upvalueindex(2)))
    return uvwl_raise(L, "ValueError", UVW_EINVAL, "uvwool: get called without its ContextVar (use var:get)");
  uvw_value_t *out = NULL;
  int rc = lua_gettop(L) >= 2 ? uvw_get_or(var, NULL, &out) : uvw_get(var, &out);
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  if (out == NULL) { /* unbound, and get_or's fallback wins over the default */
    lua_pushvalue(L, 2);
    return 1;
  }
  uvw_value_kind_t kind = uvw_value_kind(out);
  if (kind == UVW_VALUE_STRING || kind == UVW_VALUE_BYTES) {
    uvwl_seen_t *seen = lua_touserdata(L, lua_upvalueindex(3));
    if (seen->value != out) {
      lua_pushlstring(L, (const char *)uvw_value_data(out), uvw_value_len(out));
      lua_replace(L, lua_upvalueindex(4));
      uvw_value_unref(seen->value);
      seen->value = uvw_value_ref(out);
    }
    lua_pushvalue(L, lua_upvalueindex(4));
    return 1;
  }
  if (!uvwl_push_value(L, out)) return lua_error(L);
  return 1;
}

/* getter(var, contextvar): the C closure above for var. */
static int uvwl_getter(lua_State *L) {
  uvw_var_t *var = uvwl_check_swig(L, 1, SWIGTYPE_p_uvw_var_s, "uvwool variable");
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_pushlightuserdata(L, var);
  lua_pushvalue(L, 2);
  uvwl_seen_t *seen = lua_newuserdata(L, sizeof *seen);
  seen->value = NULL;
  if (luaL_newmetatable(L, UVWL_SEEN_MT)) {
    lua_pushcfunction(L, uvwl_seen_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_pushnil(L);
  lua_pushcclosure(L, uvwl_var_get, 4);
  return 1;
}

/* var_set_policy(var, flags): where the variable's binding crosses
 * (UVW_PROPAGATE_* bits). */
static int uvwl_var_set_policy(lua_State *L) {
  uvw_var_t *var = uvwl_check_swig(L, 1, SWIGTYPE_p_uvw_var_s, "uvwool variable");
  int rc = uvw_var_set_policy(var, (unsigned)luaL_checkinteger(L, 2));
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  return 0;
}

static int uvwl_missing(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_MISSING_KEY);
  return 1;
}
%}

%init %{
  uvwl_open_state(L);
  uvwl_open_tasks(L);
  uvwl_open_dispatch(L);
%}

/* ---- numbers ----------------------------------------------------------------
 * SWIG 4.1 pushes every C number with lua_pushnumber (a float in Lua 5.4). */
%typemap(out) int, enum SWIGTYPE %{ lua_pushinteger(L, (lua_Integer)$1); SWIG_arg++; %}
%typemap(out) int uvw_error_kind_is %{ lua_pushboolean(L, $1); SWIG_arg++; %}

/* ---- errors: a failing status raises, success returns nothing for it ------ */
%typemap(out) int uvw_var_declare, int uvw_get, int uvw_get_or, int uvw_set, int uvw_reset %{
  if ($1 < 0) {
    uvwl_push_error(L, $1);
    SWIG_fail;
  }
%}

/* ---- values ------------------------------------------------------------- */
%typemap(in) uvw_value_t * %{
  if (($1 = uvwl_to_value(L, $input)) == NULL) SWIG_fail;
%}
/* nil means "no default" for declare (a nil default is not expressible). */
%typemap(in) uvw_value_t *default_value %{
  if (!lua_isnil(L, $input) && ($1 = uvwl_to_value(L, $input)) == NULL) SWIG_fail;
%}
/* The callee took its own reference, if it kept the value. */
%typemap(freearg) uvw_value_t * %{ uvw_value_unref($1); %}

%typemap(in, numinputs=0) uvw_value_t **out (uvw_value_t *temp = NULL) %{ $1 = &temp; %}
%typemap(argout) uvw_value_t **out %{
  if (!uvwl_push_value(L, *$1)) SWIG_fail;
  SWIG_arg++;
%}

/* ---- out-parameters become return values ------------------------------------ */
%typemap(in, numinputs=0) uvw_var_t **out (uvw_var_t *temp = NULL) %{ $1 = &temp; %}
%typemap(argout) uvw_var_t **out %{ SWIG_NewPointerObj(L, *$1, $*1_descriptor, 0); SWIG_arg++; %}
%typemap(in, numinputs=0) uvw_token_t **token_out (uvw_token_t *temp = NULL) %{ $1 = &temp; %}
%typemap(argout) uvw_token_t **token_out %{ SWIG_NewPointerObj(L, *$1, $*1_descriptor, 1); SWIG_arg++; %}

/* Constructors return a new reference, or NULL only when allocation failed. */
%typemap(out) uvw_context_t *uvw_context_copy_current, uvw_context_t *uvw_context_new %{
  if ($1 == NULL) {
    uvwl_push_error(L, UVW_ENOMEM);
    SWIG_fail;
  }
  SWIG_NewPointerObj(L, $1, $1_descriptor, 1);
  SWIG_arg++;
%}

%include "../uvwool.i"

%native(context_run) int uvwl_context_run(lua_State *L);
%native(token_old_value) int uvwl_token_old_value_native(lua_State *L);
%native(token_used) int uvwl_token_used_native(lua_State *L);
%native(chain_id) int uvwl_chain_id(lua_State *L);
%native(missing) int uvwl_missing(lua_State *L);
%native(getter) int uvwl_getter(lua_State *L);
%native(error_new) int uvwl_error_new(lua_State *L);
%native(task_coroutine) int uvwl_task_coroutine(lua_State *L);
%native(task_id) int uvwl_task_id(lua_State *L);
%native(capture) int uvwl_capture(lua_State *L);
%native(wrap) int uvwl_wrap(lua_State *L);
%native(cfunction_key) int uvwl_cfunction_key(lua_State *L);
%native(fork_text) int uvwl_fork_text(lua_State *L);
%native(run_in_text) int uvwl_run_in_text(lua_State *L);
%native(interposed) int uvwl_interposed(lua_State *L);
%native(conn_open) int uvwl_conn_open(lua_State *L);
%native(pool_open) int uvwl_pool_open(lua_State *L);
%native(conn_close) int uvwl_conn_close(lua_State *L);
%native(conn_state) int uvwl_conn_state(lua_State *L);
%native(dispatch) int uvwl_dispatch(lua_State *L);
%native(dispatch_cancel) int uvwl_dispatch_cancel(lua_State *L);
%native(stream_open) int uvwl_stream_open(lua_State *L);
%native(stream_step) int uvwl_stream_step(lua_State *L);
%native(stream_close) int uvwl_stream_close(lua_State *L);
%native(stream_done) int uvwl_stream_done(lua_State *L);
%native(apply_reply) int uvwl_apply_reply(lua_State *L);
%native(worker_open) int uvwl_worker_open(lua_State *L);
%native(worker_register) int uvwl_worker_register(lua_State *L);
%native(worker_listen) int uvwl_worker_listen(lua_State *L);
%native(worker_set_limits) int uvwl_worker_set_limits(lua_State *L);
%native(worker_limits) int uvwl_worker_limits(lua_State *L);
%native(worker_stats) int uvwl_worker_stats(lua_State *L);
%native(worker_option) int uvwl_worker_option(lua_State *L);
%native(worker_close) int uvwl_worker_close(lua_State *L);
%native(call_answer) int uvwl_call_answer(lua_State *L);
%native(call_args) int uvwl_call_args(lua_State *L);
%native(call_info) int uvwl_call_info(lua_State *L);
%native(call_on_cancel) int uvwl_call_on_cancel(lua_State *L);
%native(baggage_header) int uvwl_baggage_header(lua_State *L);
%native(baggage_mount) int uvwl_baggage_mount(lua_State *L);
%native(var_set_policy) int uvwl_var_set_policy(lua_State *L);
