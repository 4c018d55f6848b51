-- uvwool.worker: host routines written in Lua, on luv's loop, over the C
-- worker (same wire, limits and options as uvwool-worker).
--
--   local dispatch = require "uvwool.dispatch"
--   local w = dispatch.worker({limits = {max_dispatches = 64}, on_error = print})
--   w:routine("quote", function(sku) return price_of(sku) end)
--   w:stream("prices", function(sku) local got = coroutine.yield(1); return 2 end)
--   print(w:listen("pipe:/run/app/lua-worker.sock"))
--
-- Each dispatch runs its routine in a coroutine that is a task on exactly
-- the dispatch's context (the caller's values mounted into it), so reads
-- see the caller's values, and sets and resets flow back with every
-- answer, also when the routine waits on the loop (wool.await,
-- conn:dispatch to another worker) and answers later.
local core = require "uvwool_core"
local dispatch = require "uvwool.dispatch" -- loads uvwool and luv, as a worker needs

local pack, check, EINVAL = dispatch._pack, dispatch._check, dispatch._EINVAL
local unpack = table.unpack or unpack

local M = {}

-- ---- the THROW step, raised at the routine's yield ----------------------------
-- coroutine.yield is wrapped once: a resume carrying THROW raises its error
-- at the yield; any other resume returns its values as before.
local THROW = setmetatable({}, {__tostring = function() return "uvwool.worker throw" end})
local raw_yield = coroutine.yield
if not package.loaded["uvwool.worker.yield"] then
  coroutine.yield = function(...)
    local r = pack(raw_yield(...))
    if r[1] == THROW then error(r[2], 0) end
    return unpack(r, 1, r.n)
  end
  package.loaded["uvwool.worker.yield"] = coroutine.yield
end

-- ---- calls ----------------------------------------------------------------------

local Call = {}
Call.__index = Call

-- The call of the running routine (its coroutine), weak both ways.
local call_of = setmetatable({}, {__mode = "k"})

-- worker.call(): the call of the routine running now, or nil outside one.
function M.call()
  local co = coroutine.running()
  return co and call_of[co]
end

function Call:routine() return (core.call_info(self._c)) end
function Call:cancelled() return select(2, core.call_info(self._c)) end
-- call:dispatch_timeout(): the handshake bound in ms, and whether the caller sent it.
function Call:dispatch_timeout() return select(3, core.call_info(self._c)) end
-- call:on_cancel(fn): fn(call) runs from the loop when the caller cancels
-- or goes away while the routine is waiting (a one-shot routine, or a
-- stream step in progress); the routine should then stop and answer.
-- Streams waiting between steps get the cancel at their yield instead.
function Call:on_cancel(fn)
  check(type(fn) == "function", "call:on_cancel(fn) takes a function")
  self._hooks[#self._hooks + 1] = fn
end

local function run_hooks(call)
  for _, fn in ipairs(call._hooks) do fn(call) end
end

-- An error value for the wire: uvwool error objects as they are; a Lua
-- error (a string or anything else) as a WoolError with its message.
local function as_error(err)
  if type(err) == "table" and err.class then return err end
  return core.error_new("WoolError", 0, tostring(err))
end

-- Answer the current step. When the core cannot (the call is over, the
-- context cannot be encoded), it has told the caller already: the false
-- it returns then needs nothing more here.
local function answer(call, kind, value)
  core.call_answer(call._c, kind, value)
end

-- The coroutine body: the routine's return answers RETURN, its error
-- RAISE, whoever resumed it last.
local function body(call, fn)
  return function(...)
    local r = pack(pcall(fn, ...))
    if r[1] then
      answer(call, "return", r[2])
    else
      answer(call, "raise", as_error(r[2]))
    end
  end
end

-- ---- workers --------------------------------------------------------------------

local Worker = {}
Worker.__index = Worker

local LIMIT_NAMES = {
  max_connections = true, max_dispatches = true, max_inflight_bytes = true, max_stubs = true,
  max_chains = true, write_high_water = true, frame_timeout_ms = true, idle_timeout_ms = true,
}

-- worker.open(opts): a worker on luv's loop. opts (all optional):
--   limits = {max_connections = n, ...}  (uvw_worker_limits_t's fields; absent: default)
--   socket_mode = 0x1b0, socket_group = gid, allow_uids = {uid, ...},
--   allow_gids = {gid, ...}, allow_remote = true, dispatch_timeout = ms,
--   on_error = function(err) ... end   (a peer dropped or a request refused)
function M.open(opts)
  opts = opts or {}
  check(type(opts) == "table", "worker(opts) takes a table")
  local self = setmetatable({_w = core.worker_open()}, Worker)
  if opts.limits ~= nil then
    check(type(opts.limits) == "table", "worker limits must be a table")
    for k in pairs(opts.limits) do check(LIMIT_NAMES[k], "unknown worker limit " .. tostring(k)) end
    core.worker_set_limits(self._w, opts.limits)
  end
  for _, name in ipairs({"socket_mode", "socket_group", "dispatch_timeout", "on_error"}) do
    if opts[name] ~= nil then core.worker_option(self._w, name, opts[name]) end
  end
  if opts.allow_remote then core.worker_option(self._w, "allow_remote", true) end
  for _, uid in ipairs(opts.allow_uids or {}) do core.worker_option(self._w, "allow_uid", uid) end
  for _, gid in ipairs(opts.allow_gids or {}) do core.worker_option(self._w, "allow_gid", gid) end
  return self
end

local function self_worker(self)
  check(getmetatable(self) == Worker, "a worker method called without a worker (use w:method)")
  return self._w
end

local function new_call(c)
  local call = setmetatable({_c = c, _hooks = {}}, Call)
  core.call_on_cancel(c, function() run_hooks(call) end)
  return call
end

-- w:routine(name, fn): a one-shot routine. fn(...) gets the dispatch's
-- arguments; its return value is the Result, its error the Exception. It
-- may wait on the loop (wool.await, conn:dispatch) and answer later.
function Worker:routine(name, fn)
  local w = self_worker(self)
  check(type(name) == "string", "w:routine(name, fn) takes a name")
  check(type(fn) == "function", "w:routine(name, fn) takes a function")
  core.worker_register(w, name, false, function(c)
    local call = new_call(c)
    local co = core.task_coroutine(body(call, fn), true)
    call_of[co] = call
    local ok, err = coroutine.resume(co, unpack(core.call_args(c)))
    if not ok then answer(call, "raise", as_error(err)) end
  end)
end

-- w:stream(name, genfn): a streaming routine. genfn(...) runs in a
-- coroutine: each coroutine.yield(v) is a Result (the stream goes on; the
-- yield returns the value of a SEND step, nil for NEXT, and raises the
-- error of a THROW step), its return the last Result, its error the end.
-- A yield with no value at all is a wait on something else (wool.await,
-- conn:dispatch); a stream may not wait between its Results (the caller
-- gets an error saying so).
function Worker:stream(name, genfn)
  local w = self_worker(self)
  check(type(name) == "string", "w:stream(name, genfn) takes a name")
  check(type(genfn) == "function", "w:stream(name, genfn) takes a function")
  local running = setmetatable({}, {__mode = "k"})
  core.worker_register(w, name, true, function(c, step, value)
    local st = running[c]
    local r
    if st == nil then
      local call = new_call(c)
      st = {call = call, co = core.task_coroutine(body(call, genfn), true)}
      running[c] = st
      call_of[st.co] = call
      r = pack(coroutine.resume(st.co, unpack(core.call_args(c))))
    elseif step == "throw" then
      r = pack(coroutine.resume(st.co, THROW, value))
    else
      r = pack(coroutine.resume(st.co, value))
    end
    if not r[1] then return answer(st.call, "raise", as_error(r[2])) end
    if coroutine.status(st.co) == "dead" then return end -- body answered
    if r.n < 2 then
      return answer(st.call, "raise", core.error_new("RuntimeError", EINVAL,
        "uvwool: streaming routine " .. name .. " waited on the loop between Results (not supported)"))
    end
    answer(st.call, "yield", r[2])
  end)
end

-- w:listen(address): "pipe:PATH", "tcp:HOST:PORT" or "fd:N"; returns the
-- address as bound (the port the system picked for "tcp:HOST:0").
function Worker:listen(address)
  check(type(address) == "string", "w:listen(address) takes an address string")
  return core.worker_listen(self_worker(self), address)
end

-- w:limits() / w:stats(): the limits in force and the counters, as tables.
function Worker:limits() return core.worker_limits(self_worker(self)) end
function Worker:stats() return core.worker_stats(self_worker(self)) end

-- w:close(): stop listening and drop every connection (streams waiting
-- for a step get a THROW of UVW_ECONNRESET at their yield).
function Worker:close() core.worker_close(self_worker(self)) end

M.Worker, M.Call = Worker, Call

return M
