/* Lua values <-> uvwool values, and uvwool error objects for Lua.
 *
 * nil, booleans, numbers and strings are native both ways. Every other Lua
 * value (table, function, userdata, coroutine) is stored as an opaque value
 * holding a registry reference of its Lua state: it never goes on the wire
 * (no codec is registered for it) and only that state can read it back.
 * Its release drops the reference on the Lua thread; a release made on
 * another thread (a context dropped there) is queued and drained by the
 * Lua thread's next opaque conversion. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "uvwool_lua.h"

typedef struct uvwl_box_s uvwl_box_t;

/* One per Lua state that required the module. Freed when the state closed
 * and the last opaque value of it died. */
typedef struct uvwl_state_s {
  atomic_uint refs;   /* the state's own + one per live box */
  int closed;         /* under lock */
  uint64_t thread;    /* uvw_thread_generation() of the Lua thread */
  lua_State *anchor;  /* a coroutine of the state pinned in the registry */
  pthread_mutex_t lock;
  uvwl_box_t *pending; /* boxes released off the Lua thread, under lock */
  atomic_int has_pending;
} uvwl_state_t;

struct uvwl_box_s {
  uvwl_state_t *st;
  int ref;
  uvwl_box_t *next;
};

static void state_unref(uvwl_state_t *st) {
  if (atomic_fetch_sub(&st->refs, 1) != 1) return;
  pthread_mutex_destroy(&st->lock);
  free(st);
}

static void box_free(uvwl_box_t *b) {
  uvwl_state_t *st = b->st;
  free(b);
  state_unref(st);
}

static void box_release(void *ptr) {
  uvwl_box_t *b = ptr;
  uvwl_state_t *st = b->st;
  pthread_mutex_lock(&st->lock);
  if (!st->closed && uvw_thread_generation() != st->thread) {
    b->next = st->pending;
    st->pending = b;
    atomic_store(&st->has_pending, 1);
    pthread_mutex_unlock(&st->lock);
    return;
  }
  int closed = st->closed;
  pthread_mutex_unlock(&st->lock);
  /* On the Lua thread the state is not running anything else: the anchor
   * coroutine is a valid handle on its registry. */
  if (!closed) luaL_unref(st->anchor, LUA_REGISTRYINDEX, b->ref);
  box_free(b);
}

static const uvw_opaque_ops_t lua_value_ops = {"uvwool.lua_value", box_release};

static void drain_pending(uvwl_state_t *st) {
  if (!atomic_load_explicit(&st->has_pending, memory_order_relaxed)) return;
  pthread_mutex_lock(&st->lock);
  uvwl_box_t *list = st->pending;
  st->pending = NULL;
  atomic_store(&st->has_pending, 0);
  pthread_mutex_unlock(&st->lock);
  while (list) {
    uvwl_box_t *next = list->next;
    luaL_unref(st->anchor, LUA_REGISTRYINDEX, list->ref);
    box_free(list);
    list = next;
  }
}

static uvwl_state_t *state_of(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_STATE_KEY);
  uvwl_state_t **slot = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return slot ? *slot : NULL;
}

/* __gc of the state's sentinel: runs when the state closes. Values still
 * held by contexts die later without touching the closed state. */
static int state_gc(lua_State *L) {
  uvwl_state_t **slot = lua_touserdata(L, 1);
  uvwl_state_t *st = *slot;
  if (st == NULL) return 0;
  *slot = NULL;
  pthread_mutex_lock(&st->lock);
  st->closed = 1;
  uvwl_box_t *list = st->pending;
  st->pending = NULL;
  pthread_mutex_unlock(&st->lock);
  while (list) {
    uvwl_box_t *next = list->next;
    box_free(list);
    list = next;
  }
  state_unref(st);
  return 0;
}

static int missing_tostring(lua_State *L) {
  lua_pushliteral(L, "uvwool.MISSING");
  return 1;
}

static int error_tostring(lua_State *L) {
  lua_getfield(L, 1, "class");
  lua_getfield(L, 1, "message");
  lua_getfield(L, 1, "code");
  lua_pushfstring(L, "%s: %s (%s)", lua_tostring(L, -3), lua_tostring(L, -2), lua_tostring(L, -1));
  return 1;
}

/* err:is_a(name): err's class is `name` or lies under it in the error tree. */
static int error_is_a(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *want = luaL_checkstring(L, 2);
  lua_getfield(L, 1, "class");
  const char *have = lua_tostring(L, -1);
  uvw_error_kind_t a = uvw_error_kind_from_name(want);
  lua_pushboolean(L, have && a != UVW_KIND_NONE && uvw_error_kind_is(uvw_error_kind_from_name(have), a));
  return 1;
}

static void open_error_mt(lua_State *L) {
  luaL_newmetatable(L, UVWL_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, error_is_a);
  lua_setfield(L, -2, "is_a");
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

/* Keep this module (and libuvwool) loaded for the process: variables live
 * for the process, and a context still held by some thread when the Lua
 * state closes calls box_release, code of this module, when it dies. */
static const char pin_anchor; /* an address inside this module */

static void pin_module(void) {
  Dl_info info;
  if (dladdr(&pin_anchor, &info) && info.dli_fname) dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

void uvwl_open_state(lua_State *L) {
  pin_module();
  /* A second luaopen in the same state (package.loaded cleared, as busted
   * does between files) keeps the first record: values stored before stay
   * readable and MISSING stays one object. */
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_STATE_KEY);
  int opened = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (opened) return;
  uvwl_state_t **slot = lua_newuserdata(L, sizeof *slot);
  *slot = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  uvwl_state_t *st = calloc(1, sizeof *st);
  if (st == NULL) luaL_error(L, "uvwool: out of memory");
  atomic_init(&st->refs, 1);
  atomic_init(&st->has_pending, 0);
  pthread_mutex_init(&st->lock, NULL);
  st->thread = uvw_thread_generation();
  st->anchor = lua_newthread(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "uvwool.anchor");
  *slot = st;
  lua_setfield(L, LUA_REGISTRYINDEX, UVWL_STATE_KEY);

  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, missing_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, UVWL_MISSING_KEY);
  open_error_mt(L);
}

/* ---- errors ---------------------------------------------------------------- */

static void push_error_table(lua_State *L, const char *kind, int code, const char *message, int nfields) {
  lua_createtable(L, 0, 6);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "class");
  lua_pushstring(L, kind); /* the smoke binding's name for the class, kept */
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, uvw_err_name(code));
  lua_setfield(L, -2, "code");
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "errno");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_createtable(L, 0, nfields);
  lua_setfield(L, -2, "fields");
  luaL_getmetatable(L, UVWL_ERROR_MT);
  lua_setmetatable(L, -2);
}

void uvwl_push_error(lua_State *L, int code) {
  const uvw_error_t *e = uvw_last_error();
  if (e && uvw_error_code(e) != code) e = NULL; /* a stale record of an earlier failure */
  uvwl_push_error_detail(L, e, code);
}

/* Causes nest as err.cause; a chain longer than this (a peer's error can
 * carry any) is cut there rather than recursing without bound. */
#define UVWL_CAUSE_DEPTH 8

static void push_detail(lua_State *L, const uvw_error_t *e, int code, int depth) {
  uvw_error_kind_t kind = e ? uvw_error_kind(e) : UVW_KIND_WOOL_ERROR;
  size_t n = e ? uvw_error_field_count(e) : 0;
  push_error_table(L, uvw_error_kind_name(kind), code, e ? uvw_error_message(e) : uvw_strerror(code), (int)n);
  lua_getfield(L, -1, "fields");
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, uvw_error_field_value(e, i));
    lua_setfield(L, -2, uvw_error_field_name(e, i));
  }
  lua_pop(L, 1);
  const uvw_error_t *cause = e ? uvw_error_cause(e) : NULL;
  if (cause && depth < UVWL_CAUSE_DEPTH) {
    push_detail(L, cause, uvw_error_code(cause), depth + 1);
    lua_setfield(L, -2, "cause");
  }
}

void uvwl_push_error_detail(lua_State *L, const uvw_error_t *e, int code) { push_detail(L, e, code, 0); }

int uvwl_return_text(lua_State *L, int rc, char *text) {
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  lua_pushstring(L, text);
  uvw_free(text);
  return 1;
}

void uvwl_push_new_error(lua_State *L, const char *kind, int code, const char *message) {
  push_error_table(L, kind, code, message, 0);
}

int uvwl_raise(lua_State *L, const char *kind, int code, const char *message) {
  uvwl_push_new_error(L, kind, code, message);
  return lua_error(L);
}

/* error_new(class, errno, message[, fields]): an error object made in Lua. */
int uvwl_error_new(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1);
  int code = (int)luaL_checkinteger(L, 2);
  const char *message = luaL_checkstring(L, 3);
  if (uvw_error_kind_from_name(kind) == UVW_KIND_NONE) return luaL_argerror(L, 1, "not a uvwool error class");
  uvwl_push_new_error(L, kind, code, message);
  if (lua_istable(L, 4)) {
    lua_pushvalue(L, 4);
    lua_setfield(L, -2, "fields");
  }
  return 1;
}

/* ---- values ---------------------------------------------------------------- */

#if LUA_VERSION_NUM >= 503
#define uvwl_isinteger(L, idx) lua_isinteger(L, idx)
#else
/* Lua 5.1/LuaJIT has only doubles: an integral number that a double holds
 * exactly is an integer for the other languages (and the wire). */
static int uvwl_isinteger(lua_State *L, int idx) {
  double d = lua_tonumber(L, idx);
  return d == floor(d) && fabs(d) <= 9007199254740992.0 && !(d == 0 && signbit(d));
}
#endif

static uvw_value_t *to_opaque(lua_State *L, int idx) {
  uvwl_state_t *st = state_of(L);
  if (st == NULL) {
    uvwl_push_new_error(L, "RuntimeError", UVW_EINVAL, "uvwool: this Lua state is closing");
    return NULL;
  }
  drain_pending(st);
  uvwl_box_t *b = malloc(sizeof *b);
  if (b == NULL) {
    uvwl_push_error(L, UVW_ENOMEM);
    return NULL;
  }
  b->st = st;
  b->next = NULL;
  lua_pushvalue(L, idx);
  b->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  atomic_fetch_add(&st->refs, 1);
  uvw_value_t *v = uvw_value_opaque(b, &lua_value_ops); /* releases b on failure */
  if (v == NULL) uvwl_push_error(L, UVW_ENOMEM);
  return v;
}

uvw_value_t *uvwl_to_value(lua_State *L, int idx) {
  uvw_value_t *v;
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    return uvw_value_nil();
  case LUA_TBOOLEAN:
    return uvw_value_bool(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    /* Keep integers and floats apart: 1 and 1.0 stay distinct on 5.4. */
    v = uvwl_isinteger(L, idx) ? uvw_value_int((int64_t)lua_tointeger(L, idx))
                               : uvw_value_double((double)lua_tonumber(L, idx));
    break;
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    v = uvw_value_string(s, len);
    break;
  }
  default:
    return to_opaque(L, idx);
  }
  if (v == NULL) uvwl_push_error(L, UVW_ENOMEM);
  return v;
}

static int push_opaque(lua_State *L, const uvw_value_t *v) {
  if (uvw_value_opaque_ops(v) != &lua_value_ops) {
    lua_pushfstring(L, "uvwool: an opaque value of type %s has no Lua form", uvw_value_opaque_ops(v)->type_name);
    uvwl_push_new_error(L, "ValueError", UVW_EINVAL, lua_tostring(L, -1));
    return 0;
  }
  uvwl_box_t *b = uvw_value_as_opaque(v);
  if (b->st != state_of(L)) {
    uvwl_push_new_error(L, "ValueError", UVW_EINVAL, "uvwool: the value belongs to another Lua state");
    return 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref);
  return 1;
}

int uvwl_push_value(lua_State *L, const uvw_value_t *v) {
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
  case UVW_VALUE_MISSING:
  case UVW_VALUE_UNDEFINED: /* a token's old value: "was unbound" */
    lua_getfield(L, LUA_REGISTRYINDEX, UVWL_MISSING_KEY);
    return 1;
  case UVW_VALUE_OPAQUE:
    return push_opaque(L, v);
  }
  uvwl_push_new_error(L, "ValueError", UVW_EINVAL, "uvwool: a value of unknown kind");
  return 0;
}
