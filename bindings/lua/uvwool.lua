-- uvwool for Lua: Python's contextvars for Lua on libuv (luv), a thin layer
-- over the SWIG module uvwool_core. Works on Lua 5.4 and Lua 5.1/LuaJIT.
--
--   local wool = require "uvwool"
--   local v = wool.ContextVar("app", "request_id", {default = "-"})
--   local tok = v:set("r-42"); v:get(); v:reset(tok)
--   wool.copy_context():run(function() ... end)
--   wool.spawn(function() ... coroutine.yield() ... end)  -- a task
--
-- Errors. uvwool raises error objects: tables with `class` (a name of the
-- error tree: WoolError > ChainContention, ContextVarCollision,
-- TaskFactoryDisplaced, SerializationError > ChainSerializationError,
-- LookupError, ValueError, RuntimeError, MemoryError), `code`
-- ("UVW_ELOOKUP"), `errno` (the negative integer), `message`, `fields`
-- (structured detail, e.g. ChainContention's chain_id, kind, owner_task),
-- `err:is_a("WoolError")` and a __tostring. luv reports failures as
-- `nil, msg, name` return values; uvwool raises instead, since a failed
-- get/set/reset is a bug of the caller or a guard verdict, not an I/O
-- outcome: wrap a call in pcall where a luv-style result is wanted.
--
-- Values: nil, booleans, integers, floats and strings are native both
-- ways (on 5.4 integers stay integers; on LuaJIT an integral number is an
-- integer for other languages). Tables, functions, userdata and coroutines
-- are stored as opaque values of this Lua state: never on the wire, never
-- readable from another Lua state, released on the Lua thread.
local core = require "uvwool_core"

local unpack = table.unpack or unpack
local function pack(...) return {n = select("#", ...), ...} end

local M = {version = core.version_string(), MISSING = core.missing()}

local function raise(class, errno, message, level)
  error(core.error_new(class, errno, message), (level or 1) + 1)
end
local EINVAL = -22

local function check(cond, message)
  if not cond then raise("ValueError", EINVAL, "uvwool: " .. message, 3) end
end

-- ---- variables ----------------------------------------------------------------

local ContextVar = {}
ContextVar.__index = ContextVar

local Token = {}
Token.__index = function(tok, key)
  if key == "old_value" then return core.token_old_value(rawget(tok, "_tok")) end
  if key == "used" then return core.token_used(rawget(tok, "_tok")) end
  return Token[key]
end
function Token:__tostring()
  return ("Token(%s)"):format(tostring(rawget(self, "var")))
end

-- Where a binding may cross (the core's UVW_PROPAGATE_* bits).
local PROPAGATE = {fork = 1, thread = 2, wire = 4, baggage = 8}

-- opts.propagate (a list of PROPAGATE names) as policy bits, nil if absent.
local function policy_of(list)
  if list == nil then return nil end
  check(type(list) == "table", "ContextVar's opts.propagate must be a list of fork, thread, wire, baggage")
  local bits = 0
  for _, name in ipairs(list) do
    local bit = PROPAGATE[name]
    check(bit ~= nil, "unknown opts.propagate entry " .. tostring(name) .. " (fork, thread, wire, baggage)")
    if bits % (bit * 2) < bit then bits = bits + bit end
  end
  return bits
end

-- Declare (namespace, name). opts.default, when not nil, is the default;
-- opts.propagate, when given, lists where the binding crosses: "fork"
-- (spawned tasks), "thread" (to_thread work), "wire" (dispatch), "baggage"
-- (the W3C baggage header; needs "wire"). Default: everywhere.
-- Raises ContextVarCollision when (namespace, name) is declared already.
function M.ContextVar(ns, name, opts)
  check(type(ns) == "string" and type(name) == "string", "ContextVar(namespace, name[, opts]) takes two strings")
  check(opts == nil or type(opts) == "table", "ContextVar's opts must be a table")
  local policy = policy_of(opts and opts.propagate)
  local var = core.var_declare(ns, name, opts and opts.default)
  if policy then core.var_set_policy(var, policy) end
  return M._wrap_var(var, ns, name)
end

-- A ContextVar object for the core variable var; its get is a C closure
-- bound to var (the hot path).
function M._wrap_var(var, ns, name)
  local self = setmetatable({_var = var, namespace = ns, name = name}, ContextVar)
  self.get = core.getter(var, self)
  return self
end

-- The variable (namespace, name) declared already (by this or another Lua
-- state of the process, e.g. from a to_thread work function), or nil.
function M.find_var(ns, name)
  check(type(ns) == "string" and type(name) == "string", "find_var(namespace, name) takes two strings")
  local var = core.var_find(ns, name)
  if var == nil then return nil end
  return M._wrap_var(var, ns, name)
end

local function self_var(self)
  check(getmetatable(self) == ContextVar, "a ContextVar method called without a ContextVar (use var:method)")
  return self._var
end

-- var:get() raises LookupError when unbound without default;
-- var:get(fallback) returns fallback instead (an explicit nil fallback
-- included). Each ContextVar has its own get (a C closure, see _wrap_var);
-- this one only answers calls on a non-ContextVar.
function ContextVar.get(self)
  self_var(self)
end

-- Bind value in the current context; returns a single-use token for reset
-- (token.var, token.old_value: the value before, or uvwool.MISSING).
function ContextVar:set(value)
  local tok = core.set(self_var(self), value)
  return setmetatable({_tok = tok, var = self}, Token)
end

-- Restore the value before the set that made token. A token of another
-- variable or context, a used one or a non-token raise; nothing changes.
function ContextVar:reset(token)
  local var = self_var(self)
  check(getmetatable(token) == Token, "reset expects a token returned by set, got " .. type(token))
  core.reset(var, rawget(token, "_tok"))
end

-- Scoped binding: fn(...) with the variable set to value, reset after
-- (also when fn raises: the error propagates). Returns fn's results.
function ContextVar:with(value, fn, ...)
  check(type(fn) == "function", "with(value, fn, ...) expects a function")
  local tok = self:set(value)
  local r = pack(pcall(fn, ...))
  self:reset(tok)
  if not r[1] then error(r[2], 0) end
  return unpack(r, 2, r.n)
end

function ContextVar:__tostring()
  return ("ContextVar(%s, %s)"):format(self.namespace, self.name)
end

-- ---- contexts -----------------------------------------------------------------

local Context = {}
Context.__index = Context

local function wrap_context(ctx)
  return setmetatable({_ctx = ctx}, Context)
end

-- Calls fn(...) with this context current and returns fn's results; fn's
-- errors propagate once the previous context is current again.
function Context:run(fn, ...)
  check(getmetatable(self) == Context, "run called without a context (use ctx:run)")
  return core.context_run(self._ctx, fn, ...)
end

-- A copy of the current context (O(1)).
function M.copy_context()
  return wrap_context(core.context_copy_current())
end

-- A new empty context, with no bindings.
function M.Context()
  return wrap_context(core.context_new())
end

-- The current context's chain id (32 hex digits), nil while unarmed.
M.chain_id = core.chain_id

-- ---- errors -------------------------------------------------------------------

local ERROR_MT = getmetatable(core.error_new("WoolError", 0, ""))

-- True when err is a uvwool error of class `class` or a subclass.
function M.is_error(err, class)
  return type(err) == "table" and getmetatable(err) == ERROR_MT and err:is_a(class)
end

-- ---- coroutines as tasks ------------------------------------------------------
-- requiring this module replaces coroutine.resume with a C function that
-- runs a task's coroutine inside its task; plain coroutines are unchanged.

local resume = coroutine.resume

-- Run fn(...) in a new coroutine that is a task on a fork of the current
-- context (its writes stay its own; an armed chain gets a new id). Starts it
-- at once, up to its first yield; every later resume of the coroutine, by
-- anyone, runs in its context. Returns the coroutine; an error raised
-- before the first yield propagates.
function M.spawn(fn, ...)
  check(type(fn) == "function", "spawn(fn, ...) expects a function")
  local co = core.task_coroutine(fn)
  local ok, err = resume(co, ...)
  if not ok then error(err, 0) end
  return co
end

-- coroutine.wrap for tasks: the fork is made now; each call resumes.
function M.wrap(fn)
  check(type(fn) == "function", "wrap(fn) expects a function")
  local co = core.task_coroutine(fn)
  return function(...)
    local r = pack(resume(co, ...))
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
end

-- Await one luv callback from inside a coroutine (a spawned task):
-- start(cb, ...) registers cb with luv (uv.fs_stat(path, cb), ...); await
-- yields until luv calls cb, then returns cb's arguments. The coroutine is
-- resumed once, by the first call of cb (later calls of a multi-shot
-- callback are ignored); an error the coroutine raises after that resume
-- is raised from cb, to luv's handler.
function M.await(start, ...)
  check(type(start) == "function", "await(start, ...) expects a function")
  local co = coroutine.running()
  local yieldable
  if coroutine.isyieldable then yieldable = coroutine.isyieldable() else yieldable = co ~= nil end
  check(yieldable, "await must be called inside a coroutine")
  local state, early = "registering", nil
  start(function(...)
    if state == "waiting" then
      state = "done"
      local ok, err = resume(co, ...)
      if not ok then error(err, 0) end
    elseif state == "registering" then -- called back during start itself
      state, early = "done", pack(...)
    end
  end, ...)
  if early then return unpack(early, 1, early.n) end
  state = "waiting"
  return coroutine.yield()
end

-- ---- work on luv's thread pool ------------------------------------------------

-- Runs on the work thread's own Lua state: the module is required there
-- (with the submitter's package paths), the context text mounted into a
-- fresh context around the user's function.
local WORK_SRC = [[
local id, text, code, path, cpath = ...
package.path, package.cpath = path, cpath
local core = require "uvwool_core"
local fn = (loadstring or load)(code)
return id, core.run_in_text(text, fn, select(6, ...))
]]

-- to_thread(work_fn[, after_fn]): luv's new_work with the context. Returns
-- an object whose :queue(...) runs work_fn(...) on luv's thread pool (in
-- another Lua state: work_fn is dumped, so no upvalues, and arguments and
-- results are what luv carries: nil, booleans, numbers, strings) in a
-- detached fork of the context current at queue (its own chain id, owned by
-- the work thread: it sees the values, never trips the guard, and its writes
-- never flow back). Variables are reached there with uvwool.find_var.
-- after_fn(...) gets work_fn's results on the loop thread, in the context
-- captured at queue.
function M.to_thread(work_fn, after_fn)
  check(type(work_fn) == "function", "to_thread(work_fn[, after_fn]) expects a function")
  check(after_fn == nil or type(after_fn) == "function", "to_thread's after_fn must be a function")
  local uv = package.loaded.luv or (type(vim) == "table" and vim.loop) or require "luv"
  -- luv's own functions, not uvwool.luv's wrappers when installed: this
  -- captures the after-callback per queue itself (twice would double the
  -- captures and the work chunks).
  local wluv = package.loaded["uvwool.luv"]
  local new_work = wluv and wluv.original(uv.new_work) or uv.new_work
  local queue_work = wluv and wluv.original(uv.queue_work) or uv.queue_work
  local code = string.dump(work_fn)
  local pending, seq = {}, 0
  local work = new_work(WORK_SRC, function(id, ...)
    local after = pending[id]
    pending[id] = nil
    if after then return after(...) end
  end)
  return {
    queue = function(_, ...)
      seq = seq + 1
      local text = core.fork_text()
      pending[seq] = after_fn and core.capture(after_fn) or false
      local ok, err = queue_work(work, seq, text, code, package.path, package.cpath, ...)
      if not ok then pending[seq] = nil end
      return ok, err
    end,
  }
end

-- Runs first in the new thread's own Lua state, as WORK_SRC does.
local THREAD_SRC = [[
local text, code, path, cpath = ...
package.path, package.cpath = path, cpath
local core = require "uvwool_core"
local fn = (loadstring or load)(code)
core.run_in_text(text, fn, select(5, ...))
]]

-- new_thread([options, ]entry, ...): luv's new_thread with the context:
-- entry(...) runs on a new OS thread, in its own Lua state, in a detached
-- fork of the context current now (as to_thread's work). Returns luv's
-- thread handle (uv.thread_join it).
function M.new_thread(...)
  local opts, entry, first = nil, ..., 2
  if type(entry) == "table" then opts, entry, first = entry, select(2, ...), 3 end
  check(type(entry) == "function", "new_thread([options, ]entry, ...) expects a function")
  local uv = package.loaded.luv or (type(vim) == "table" and vim.loop) or require "luv"
  local args = pack(select(first, ...))
  local text, code = core.fork_text(), string.dump(entry)
  if opts then
    return uv.new_thread(opts, THREAD_SRC, text, code, package.path, package.cpath, unpack(args, 1, args.n))
  end
  return uv.new_thread(THREAD_SRC, text, code, package.path, package.cpath, unpack(args, 1, args.n))
end

-- The id of the current task (or of coroutine co's task); nil outside tasks.
M.task_id = core.task_id

return M
