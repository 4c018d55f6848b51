/* A test-only Lua module over one uvwool variable: set(value) binds it in
 * the current context, get() reads it (nil when unbound). With the preload
 * object, a luv callback must see the value set when it was registered. The
 * real Lua binding is elsewhere; this is just enough to look at the C side. */
#include <lauxlib.h>
#include <lua.h>

#include "uvwool/context.h"

static uvw_var_t *var;

static int l_set(lua_State *L) {
  uvw_value_t *v = uvw_value_cstring(luaL_checkstring(L, 1));
  int rc = v ? uvw_set(var, v, NULL) : UVW_ENOMEM;
  uvw_value_unref(v);
  if (rc != 0) return luaL_error(L, "uvw_set failed: %d", rc);
  return 0;
}

static int l_get(lua_State *L) {
  uvw_value_t *out;
  if (uvw_get(var, &out) != 0)
    lua_pushnil(L);
  else
    lua_pushstring(L, uvw_value_as_string(out));
  return 1;
}

int luaopen_uvwool_testvar(lua_State *L);
int luaopen_uvwool_testvar(lua_State *L) {
  if (var == NULL && (var = uvw_var_find("interpose", "lua")) == NULL &&
      uvw_var_declare("interpose", "lua", NULL, &var) != 0)
    return luaL_error(L, "cannot declare the test variable");
  static const luaL_Reg fns[] = {{"set", l_set}, {"get", l_get}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
