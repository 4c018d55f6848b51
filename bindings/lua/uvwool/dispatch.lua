-- uvwool.dispatch: run routines in a uvwool-worker process, on luv's loop.
--
--   local dispatch = require "uvwool.dispatch"
--   local conn = dispatch.connect("pipe:/run/app/worker.sock")
--   wool.spawn(function()
--     local v = conn:dispatch("quote", sku)     -- yields until the reply
--     -- the routine's changes to context variables are visible here
--     for step in conn:stream("prices", sku) do ... end
--   end)
--   conn:dispatch_cb("quote", {sku}, function(err, v) ... end)  -- anywhere
--
-- A dispatch carries the context current when it is made; the worker's
-- changes come back with the reply. In a coroutine the reply resumes it
-- and the changes are mounted into that coroutine's context before
-- dispatch returns (apply-back): its tokens stay valid, other coroutines
-- see nothing. A callback runs in a copy of the dispatching context with
-- the changes merged (the C rule: the registering context never changes).
-- A failed dispatch (remote error excepted: changes made before the
-- routine raised do come back) applies nothing.
local core = require "uvwool_core"
require "uvwool"

local function pack(...) return {n = select("#", ...), ...} end

local M = {}

local EINVAL = -22
local function check(cond, message)
  if not cond then error(core.error_new("ValueError", EINVAL, "uvwool: " .. message), 3) end
end

-- luv must be loaded first: the connection runs on its loop.
if not package.loaded.luv and not (type(vim) == "table" and vim.loop) then require "luv" end

-- The coroutine we are in, or nil on the main thread (5.1 and 5.4 forms).
local function current_coroutine()
  local co, main = coroutine.running()
  if co == nil or main then return nil end
  return co
end

-- Marks a resume made by a reply, so a stray resume is told apart.
local REPLY = setmetatable({}, {__tostring = function() return "uvwool.dispatch reply" end})

-- The continuation of a coroutine waiting for one reply: resume it with
-- the reply. An error the coroutine raises then goes to luv's handler. A
-- coroutine that stopped waiting (resumed by someone else, and dead or
-- waiting on something else now) does not get the reply.
local function resumer(co)
  return function(ok, v, merged, done)
    if coroutine.status(co) ~= "suspended" then return end
    local rok, err = coroutine.resume(co, REPLY, ok, v, merged, done)
    if not rok then error(err, 0) end
  end
end

-- Back in the coroutine: mount the worker's changes, then return or raise.
local function finish(mark, ok, v, merged, done)
  if mark ~= REPLY then
    error(core.error_new("RuntimeError", EINVAL,
      "uvwool: a coroutine waiting for a dispatch reply was resumed by someone else"), 3)
  end
  if merged then core.apply_reply(merged) end
  if not ok then error(v, 3) end
  return v, done
end

local function awaiting(what)
  local co = current_coroutine()
  check(co ~= nil, what .. " waits in a coroutine (wool.spawn); outside one use the _cb form")
  return co
end

-- A callback continuation: cb(nil, value, done) or cb(err, nil, done).
local function callback(cb)
  return function(ok, v, _, done)
    if ok then return cb(nil, v, done) end
    return cb(v, nil, done)
  end
end

-- ---- connections ------------------------------------------------------------

local Conn = {}
Conn.__index = Conn

-- A connection object over what open(target, timeout) made.
local function new_conn(what, open, target, opts)
  check(opts == nil or type(opts) == "table", what .. "'s opts must be a table")
  local timeout = opts and opts.timeout
  return setmetatable({_c = open(target, timeout), _timeout = timeout}, Conn)
end

-- connect(address[, {timeout = ms}]): a connection to one worker
-- ("pipe:PATH" or "tcp:HOST:PORT"). Returns at once: dispatches made before
-- it is up are queued. timeout bounds each dispatch's handshake (default
-- 5000 ms), not the routine's run.
function M.connect(address, opts)
  check(type(address) == "string", "connect(address[, opts]) takes an address string")
  return new_conn("connect", core.conn_open, address, opts)
end

-- pool({address, ...}[, opts]): round-robin over several workers; a dead
-- member is skipped and reconnected in the background. Same methods.
function M.pool(addresses, opts)
  check(type(addresses) == "table", "pool(addresses[, opts]) takes a list of addresses")
  return new_conn("pool", core.pool_open, addresses, opts)
end

local function self_conn(self)
  check(getmetatable(self) == Conn, "a connection method called without a connection (use conn:method)")
  return self._c
end

-- conn:dispatch(routine, ...): from a coroutine, run routine(...) in the
-- worker and return its value, with the routine's context changes applied
-- to this coroutine's context. Raises the routine's error (class, code,
-- fields, cause; changes made before it raised applied) or a local failure
-- (UVW_ECONNRESET for a lost connection, UVW_ETIMEDOUT, ...; nothing
-- applied).
function Conn:dispatch(routine, ...)
  local c = self_conn(self)
  check(type(routine) == "string", "dispatch(routine, ...) takes a routine name")
  local co = awaiting("conn:dispatch")
  core.dispatch(c, routine, pack(...), resumer(co), true, self._timeout)
  return (finish(coroutine.yield()))
end

local Pending = {}
Pending.__index = Pending

-- pending:cancel(): decide the reply now (UVW_ECANCELED, nothing applied,
-- the worker told); cb runs later from the loop, never inside cancel.
-- true when this cancelled it, false when it was already answered, timed
-- out or cancelled.
function Pending:cancel() return core.dispatch_cancel(self._h) end

-- conn:dispatch_cb(routine, args, cb): anywhere; cb(err, value) runs once
-- from the loop, in the dispatching context with the routine's changes.
-- Returns the pending dispatch (pending:cancel()).
function Conn:dispatch_cb(routine, args, cb)
  local c = self_conn(self)
  check(type(routine) == "string", "dispatch_cb(routine, args, cb) takes a routine name")
  check(type(args) == "table", "dispatch_cb's args must be a table (a list; args.n counts trailing nils)")
  check(type(cb) == "function", "dispatch_cb(routine, args, cb) takes a callback")
  return setmetatable({_h = core.dispatch(c, routine, args, callback(cb), false, self._timeout)}, Pending)
end

-- conn:close(): pending dispatches fail with UVW_ECANCELED.
function Conn:close() core.conn_close(self_conn(self)) end

-- conn:state(): "open", "dead" or "closed", and the dispatches pending.
function Conn:state() return core.conn_state(self_conn(self)) end

-- ---- streams ------------------------------------------------------------------

local Stream = {}
Stream.__index = Stream

-- conn:stream(routine, ...): a streaming dispatch. From a coroutine,
-- stream:next() / stream:send(v) / stream:throw(err) return the step's
-- value and whether the stream ended (each applies the step's changes to
-- the coroutine); `for v in stream do` iterates the values until the end
-- (the last value, the routine's return, is stream.result; a nil value
-- ends a generic for, so use next() when a step may yield nil). The _cb forms
-- (next_cb(cb), send_cb(v, cb), throw_cb(err, cb)) work anywhere.
function Conn:stream(routine, ...)
  local c = self_conn(self)
  check(type(routine) == "string", "stream(routine, ...) takes a routine name")
  return setmetatable({_s = core.stream_open(c, routine, pack(...), self._timeout), conn = self}, Stream)
end

local function self_stream(self)
  check(getmetatable(self) == Stream, "a stream method called without a stream (use stream:method)")
  return self._s
end

local function step(self, kind, value)
  local s = self_stream(self)
  local co = awaiting("stream:" .. kind)
  core.stream_step(s, kind, value, resumer(co), true)
  local ok, v, done = pcall(finish, coroutine.yield())
  if not ok or done then self.ended = true end
  if not ok then error(v, 2) end
  if done then self.result = v end
  return v, done
end

function Stream:next() return step(self, "next") end
function Stream:send(value) return step(self, "send", value) end
function Stream:throw(err) return step(self, "throw", err) end

local function step_cb(self, kind, value, cb)
  local s = self_stream(self)
  check(type(cb) == "function", "a stream _cb step takes a callback")
  core.stream_step(s, kind, value, callback(cb), false)
end

function Stream:next_cb(cb) return step_cb(self, "next", nil, cb) end
function Stream:send_cb(value, cb) return step_cb(self, "send", value, cb) end
function Stream:throw_cb(err, cb) return step_cb(self, "throw", err, cb) end

-- stream:close(): ends the stream; a pending step gets UVW_ECANCELED and
-- the routine is told.
function Stream:close() core.stream_close(self_stream(self)) end
function Stream:done() return core.stream_done(self_stream(self)) end

-- for v in stream do ... end: each step's value until the stream ends.
function Stream:__call()
  if self.ended or core.stream_done(self_stream(self)) then return nil end
  local v, done = self:next()
  if done then return nil end
  return v
end

-- ---- hosting routines -----------------------------------------------------------

-- worker(opts): a worker hosting Lua routines on luv's loop (uvwool.worker).
function M.worker(opts) return require("uvwool.worker").open(opts) end

M.Conn, M.Stream = Conn, Stream
-- Shared with uvwool.worker.
M._pack, M._check, M._EINVAL = pack, check, EINVAL

return M
