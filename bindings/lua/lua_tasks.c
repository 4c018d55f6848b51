/* Coroutines as uvwool runtime tasks, and the capture closures that carry a
 * context (and task) from a registration to its callbacks.
 *
 * A coroutine made by task_coroutine owns a runtime task (uvwool/task.h) in
 * a fork of the context current at its creation. The task lives in a
 * userdata kept in a weak-keyed table (coroutine -> task box): an ephemeron,
 * so the box dies with the coroutine and its __gc finishes the task. Every
 * resume goes through the C replacement of coroutine.resume installed here
 * (lcorolib's resume, inside the task for a task coroutine), so third-party code
 * resuming a task coroutine (from a luv callback, say) runs it in its
 * context and gets its own back. Lua 5.1/LuaJIT has no per-coroutine extra
 * space, so one table serves both ABIs. */
#include "uvwool_lua.h"

#define UVWL_TASK_MT "uvwool.Task"
#define UVWL_TASKS_KEY "uvwool.tasks"
#define UVWL_CAPTURE_MT "uvwool.Capture"

typedef struct {
  uvw_task_t *task;
} task_box_t;

static int task_box_gc(lua_State *L) {
  task_box_t *b = lua_touserdata(L, 1);
  if (b->task == NULL) return 0;
  /* An unreachable coroutine cannot be running: the task is not entered. */
  uvw_task_finish(b->task);
  uvw_task_unref(b->task);
  b->task = NULL;
  return 0;
}

/* The task of coroutine `idx` looked up in the task table at `tasks`, or
 * NULL for a plain coroutine. Borrowed: the box lives as long as the
 * coroutine. */
static uvw_task_t *task_in(lua_State *L, int idx, int tasks) {
  lua_pushvalue(L, idx);
  lua_rawget(L, tasks);
  task_box_t *b = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return b ? b->task : NULL;
}

static uvw_task_t *task_of(lua_State *L, int idx) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_TASKS_KEY);
  uvw_task_t *t = task_in(L, idx, lua_gettop(L));
  lua_pop(L, 1);
  return t;
}

/* lcorolib's statuses: suspended (yielded, or created and not started) or
 * dead (returned, raised); anything else is running or normal. */
static int is_suspended(lua_State *L, lua_State *co) {
  lua_Debug ar;
  if (co == L) return 0;
  if (lua_status(co) == LUA_YIELD) return 1;
  return lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar) == 0 && lua_gettop(co) > 0;
}

static int is_dead(lua_State *co) {
  lua_Debug ar;
  if (lua_status(co) == LUA_YIELD) return 0;
  return lua_status(co) != LUA_OK || (lua_getstack(co, 0, &ar) == 0 && lua_gettop(co) == 0);
}

/* lcorolib's auxresume for both ABIs: move narg arguments to co, resume it,
 * move its results (>= 0 returned) or its error (-1) back onto L. */
static int auxresume(lua_State *L, lua_State *co, int narg) {
  int status, nres;
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
#if LUA_VERSION_NUM >= 504
  status = lua_resume(co, L, narg, &nres);
#elif LUA_VERSION_NUM == 501
  status = lua_resume(co, narg);
  nres = lua_gettop(co);
#else
#error "uvwool's Lua module supports the Lua 5.4 and 5.1 (LuaJIT) ABIs"
#endif
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1);
  return -1;
}

/* coroutine.resume(co, ...), upvalue 1 the task table: a task coroutine is
 * resumed inside its task. Results and messages are coroutine.resume's. */
static int task_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argcheck(L, co != NULL, 1, "coroutine expected");
  if (!is_suspended(L, co)) {
    lua_pushboolean(L, 0);
    lua_pushstring(L, is_dead(co) ? "cannot resume dead coroutine" : "cannot resume non-suspended coroutine");
    return 2;
  }
  uvw_task_t *task = task_in(L, 1, lua_upvalueindex(1));
  int entered = task && !uvw_task_finished(task) && uvw_task_enter(task) == 0;
  int r = auxresume(L, co, lua_gettop(L) - 1);
  if (entered) {
    int left = uvw_task_leave(task);
    if (lua_status(co) != LUA_YIELD) uvw_task_finish(task); /* returned or raised */
    if (left < 0) {
      uvwl_push_error(L, left);
      return lua_error(L);
    }
  }
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

/* task_coroutine(fn[, here]): a new coroutine running fn as a task on a
 * fork of the current context, or (here) on exactly the current context
 * (uvw_task_new_in: its writes are that context's; a hosted routine). */
int uvwl_task_coroutine(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  int here = lua_toboolean(L, 2);
  lua_settop(L, 1);
  task_box_t *b = lua_newuserdata(L, sizeof *b);
  b->task = NULL;
  luaL_getmetatable(L, UVWL_TASK_MT);
  lua_setmetatable(L, -2);
  int rc = here ? uvw_task_new_in(uvw_context_current(), &b->task) : uvw_task_new(NULL, &b->task);
  if (rc < 0) {
    uvwl_push_error(L, rc);
    return lua_error(L);
  }
  lua_State *co = lua_newthread(L); /* stack: fn box co */
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_TASKS_KEY);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -4);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return 1;
}

/* task_id([co]): the id of co's task, or of the current task; nil if none. */
int uvwl_task_id(lua_State *L) {
  uvw_task_t *t = lua_isthread(L, 1) ? task_of(L, 1) : uvw_task_current();
  if (t == NULL) return 0;
#if LUA_VERSION_NUM >= 503
  lua_pushinteger(L, (lua_Integer)uvw_task_id(t));
#else
  lua_pushnumber(L, (lua_Number)uvw_task_id(t));
#endif
  return 1;
}

void uvwl_open_tasks(lua_State *L) {
  luaL_newmetatable(L, UVWL_TASK_MT);
  lua_pushcfunction(L, task_box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);

  /* One task table per state, also across repeated luaopens: the resume
   * hook holds it as its upvalue. */
  lua_getfield(L, LUA_REGISTRYINDEX, UVWL_TASKS_KEY);
  int opened = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!opened) {
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, UVWL_TASKS_KEY);
  }

  /* coroutine.resume -> task_resume. Code that saved the original before
   * require "uvwool" keeps it: such resumes run in the resumer's context. */
  lua_getglobal(L, "coroutine");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_getfield(L, -1, "resume");
  int installed = lua_tocfunction(L, -1) == task_resume;
  lua_pop(L, 1);
  if (!installed) {
    lua_getfield(L, LUA_REGISTRYINDEX, UVWL_TASKS_KEY);
    lua_pushcclosure(L, task_resume, 1);
    lua_setfield(L, -2, "resume");
  }
  lua_pop(L, 1);
}

/* ---- capture closures ---------------------------------------------------------
 * capture(fn) returns a C closure over fn and a capture box: the context
 * current at registration (a copy) and the task then current. Calling it
 * enters both around fn and restores the caller's after, also when fn
 * raises (the error is raised again for luv's handler). One capture per
 * registration: a multi-shot callback sees its previous event's writes. */

typedef struct {
  uvw_context_t *ctx;
  uvw_task_t *task;
} capture_t;

static int capture_gc(lua_State *L) {
  capture_t *c = lua_touserdata(L, 1);
  uvw_context_unref(c->ctx);
  uvw_task_unref(c->task);
  c->ctx = NULL;
  c->task = NULL;
  return 0;
}

static int captured_call(lua_State *L) {
  capture_t *c = lua_touserdata(L, lua_upvalueindex(2));
  /* A suspended task is made current again so its chain does not see a
   * stranger; a finished one is not (the guard ignores finished owners). */
  int task_in = c->task && c->task != uvw_task_current() && !uvw_task_finished(c->task) &&
                uvw_task_enter(c->task) == 0;
  /* Entering fails only when the same registration's callback is already
   * running further up (a nested loop run): it then runs where it is. */
  int ctx_in = uvw_context_enter(c->ctx) == 0;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  int rc = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  if (ctx_in) uvw_context_exit(c->ctx);
  if (task_in) uvw_task_leave(c->task);
  if (rc != LUA_OK) {
    /* luv's handler (and Neovim's) print the error with lua_tostring, which
     * gives NULL for an error object: hand them its __tostring text. */
    if (!lua_isstring(L, -1) && luaL_callmeta(L, -1, "__tostring") && lua_isstring(L, -1)) lua_remove(L, -2);
    return lua_error(L);
  }
  return lua_gettop(L);
}

/* Pushes a capture of the callable at idx (absolute). */
static void push_capture(lua_State *L, int idx) {
  lua_pushvalue(L, idx);
  capture_t *c = lua_newuserdata(L, sizeof *c);
  c->ctx = NULL;
  c->task = NULL;
  luaL_getmetatable(L, UVWL_CAPTURE_MT);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    luaL_newmetatable(L, UVWL_CAPTURE_MT);
    lua_pushcfunction(L, capture_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  c->ctx = uvw_context_copy_current();
  if (c->ctx == NULL) {
    uvwl_push_error(L, UVW_ENOMEM);
    lua_error(L); /* does not return */
  }
  c->task = uvw_task_ref(uvw_task_current());
  lua_pushcclosure(L, captured_call, 2);
}

int uvwl_capture(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  push_capture(L, 1);
  return 1;
}

/* A table that can be called (a __call metamethod). Userdata are left
 * alone: luv takes its handles and requests as arguments. */
static int is_callable_table(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE || !lua_getmetatable(L, idx)) return 0;
  int callable = 0;
  if (lua_istable(L, -1)) {
    lua_pushliteral(L, "__call");
    lua_rawget(L, -2);
    callable = !lua_isnil(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return callable;
}

/* The wrapper of a luv function that registers callbacks (upvalue 1): each
 * function argument that is not a capture already, and each callable
 * table, is replaced by a capture in place, then the luv function is
 * called with the same arguments and its results returned. In C, not Lua:
 * a Lua wrapper packs and unpacks the arguments in a table per call, which
 * cost more than the capture itself on a timer restarted from its own
 * callback. */
static int wrapped_call(lua_State *L) {
  int n = lua_gettop(L);
  for (int i = 1; i <= n; i++) {
    int is_fn = lua_type(L, i) == LUA_TFUNCTION;
    if (is_fn ? lua_tocfunction(L, i) != captured_call : is_callable_table(L, i)) {
      push_capture(L, i);
      lua_replace(L, i);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, n, LUA_MULTRET);
  return lua_gettop(L);
}

/* wrap(f): the capturing wrapper of the luv function f. */
int uvwl_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_pushcclosure(L, wrapped_call, 1);
  return 1;
}

/* cfunction_key(f): a key naming f's C function (lightuserdata), nil for a
 * Lua function. LuaJIT makes a distinct function object per push of one C
 * function, so luv's uv.timer_start and its timer's start method are equal
 * only by this key. */
int uvwl_cfunction_key(lua_State *L) {
  lua_CFunction f = lua_tocfunction(L, 1);
  if (f == NULL) return 0;
  union {
    lua_CFunction f;
    void *p;
  } u = {.f = f};
  lua_pushlightuserdata(L, u.p);
  return 1;
}
