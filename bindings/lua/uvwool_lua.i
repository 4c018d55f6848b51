/* uvwool_core for Lua: the typemaps and hand-written entry points over the
 * language-neutral interface (bindings/uvwool.i).
 *
 * Most functions are wrapped directly; typemaps do the work:
 *   - Lua values <-> uvw_value_t* (nil, boolean, integer, float, string);
 *   - an `int` status return of a fallible call raises a uvwool error (a table
 *     {kind=, code=, errno=, message=, fields=}) instead of being returned;
 *   - out-parameters (uvw_var_t **, uvw_token_t **, uvw_value_t **) become
 *     return values;
 *   - tokens and contexts are SWIG classes whose destructor runs from Lua's
 *     GC, so Lua owns them.
 * Only context_run is hand-written (%native), because uvw_context_run takes a
 * C callback and a Lua error must never unwind through uvwool's frames.
 * bindings/lua/uvwool.lua puts the idiomatic layer on top. */
%module uvwool_core

%{
#include "uvwool.h"

#define UVWL_ERROR_MT "uvwool.Error"

static int uvwl_error_tostring(lua_State *L) {
  lua_getfield(L, 1, "kind");
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "code");
  lua_pushfstring(L, "%s: %s (%s)", lua_tostring(L, -3), lua_tostring(L, -2), lua_tostring(L, -1));
  return 1;
}

/* Push the error object for the failed call that returned `code`. The detail
 * record is read at once: it only lives until the next failing call. */
static void uvwl_push_error(lua_State *L, int code) {
  const uvw_error_t *e = uvw_last_error();
  uvw_error_kind_t kind = e ? uvw_error_kind(e) : UVW_KIND_WOOL_ERROR;
  size_t n = e ? uvw_error_field_count(e) : 0;

  lua_createtable(L, 0, 5);
  lua_pushstring(L, uvw_error_kind_name(kind));
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, uvw_err_name(code));
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "errno");
  lua_pushstring(L, e ? uvw_error_message(e) : uvw_strerror(code));
  lua_setfield(L, -2, "message");
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, uvw_error_field_value(e, i));
    lua_setfield(L, -2, uvw_error_field_name(e, i));
  }
  lua_setfield(L, -2, "fields");

  if (luaL_newmetatable(L, UVWL_ERROR_MT)) {
    lua_pushcfunction(L, uvwl_error_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
}

/* Lua value at idx -> new reference. On failure pushes an error object and
 * returns NULL: the caller SWIG_fails, so freearg of earlier arguments runs. */
static uvw_value_t *uvwl_to_value(lua_State *L, int idx) {
  uvw_value_t *v;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return uvw_value_nil();
  case LUA_TBOOLEAN:
    return uvw_value_bool(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    /* Keep Lua 5.4's integer/float subtypes apart: 1 and 1.0 stay distinct. */
    v = lua_isinteger(L, idx) ? uvw_value_int((int64_t)lua_tointeger(L, idx))
                              : uvw_value_double((double)lua_tonumber(L, idx));
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    v = uvw_value_string(s, len);
    break;
  }
  default:
    lua_pushfstring(L, "uvwool: cannot store a %s in a context variable", luaL_typename(L, idx));
    return NULL;
  }
  if (v == NULL) uvwl_push_error(L, UVW_ENOMEM);
  return v;
}

/* Value -> Lua value pushed. A NULL value (a NULL fallback of uvw_get_or) is
 * nil. Returns 0 and pushes an error message for kinds Lua cannot hold. */
static int uvwl_push_value(lua_State *L, const uvw_value_t *v) {
  if (v == NULL) {
    lua_pushnil(L);
    return 1;
  }
  switch (uvw_value_kind(v)) {
  case UVW_VALUE_NIL:
    lua_pushnil(L);
    return 1;
  case UVW_VALUE_BOOL:
    lua_pushboolean(L, uvw_value_as_bool(v));
    return 1;
  case UVW_VALUE_INT:
    lua_pushinteger(L, (lua_Integer)uvw_value_as_int(v));
    return 1;
  case UVW_VALUE_DOUBLE:
    lua_pushnumber(L, (lua_Number)uvw_value_as_double(v));
    return 1;
  case UVW_VALUE_STRING:
  case UVW_VALUE_BYTES: /* Lua strings are byte strings */
    lua_pushlstring(L, (const char *)uvw_value_data(v), uvw_value_len(v));
    return 1;
  default: /* sentinels never come out of get; opaque values need a codec */
    lua_pushfstring(L, "uvwool: value kind %d has no Lua form", (int)uvw_value_kind(v));
    return 0;
  }
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
static int uvwl_context_run(lua_State *L) {
  uvw_context_t *ctx = NULL;
  if (!SWIG_IsOK(SWIG_ConvertPtr(L, 1, (void **)&ctx, SWIGTYPE_p_uvw_context_s, 0)))
    return luaL_argerror(L, 1, "uvwool context expected");
  luaL_checktype(L, 2, LUA_TFUNCTION);

  struct uvwl_run r = {L, lua_gettop(L) - 2, LUA_OK};
  int rc = uvw_context_run(ctx, uvwl_run_trampoline, &r);
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  if (r.status != LUA_OK) return lua_error(L); /* fn's error, now that ctx is left */
  return lua_gettop(L) - 1; /* everything above ctx is fn's results */
}
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
