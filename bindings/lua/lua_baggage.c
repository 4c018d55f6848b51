/* The W3C baggage header from Lua (uvwool.otel): render the current
 * context's baggage-propagated string variables, and mount a received
 * header into the current context. The header format and its limits are
 * the core's (uvw_baggage_encode / uvw_baggage_decode). */
#include "uvwool_lua.h"

/* baggage_header(): the current context's baggage header value ("" when
 * nothing is rendered). */
int uvwl_baggage_header(lua_State *L) {
  char *text = NULL;
  int rc = uvw_baggage_encode(NULL, &text);
  return uvwl_return_text(L, rc, text);
}

/* baggage_mount(header): bind the header's members that name declared
 * variables in the current context (other systems' members are kept for
 * re-emission). On error the context is unchanged. */
int uvwl_baggage_mount(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  uvw_manifest_t *m = NULL;
  int rc = uvw_baggage_decode(text, len, &m);
  if (rc == 0) rc = uvw_manifest_mount(m);
  uvw_manifest_free(m);
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  return 0;
}
