-- A Lua worker for worker_spec.lua: hosts the test routines with
-- uvwool.dispatch's worker on luv's loop, listening on arg[1]; prints
-- "listening on ADDRESS" once it accepts, exits on SIGTERM.
local wool = require "uvwool"
local dispatch = require "uvwool.dispatch"
local worker = require "uvwool.worker"
local core = require "uvwool_core"
local uv = require "luv"

-- The caller declares the same variables (namespace "t").
local request_id = wool.ContextVar("t", "request_id")
local tenant = wool.ContextVar("t", "tenant")
local counter = wool.ContextVar("t", "counter")

local errors = 0
local w = dispatch.worker({
  limits = {max_dispatches = 32, max_chains = 4},
  dispatch_timeout = 2000,
  on_error = function() errors = errors + 1 end,
})

-- What the cancel tests saw, read back by "cancel_seen".
local cancel_seen = "nothing"

w:routine("add", function(a, b) return a + b end)
w:routine("kinds", function(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    out[i] = (math.type and math.type(v)) or type(v)
  end
  return table.concat(out, ",")
end)
w:routine("concat", function(a, b) return a .. b end)

-- The caller's context, read and changed: a set that flows back, and a
-- set undone by its reset (the caller keeps its own value).
w:routine("read_and_mutate", function()
  local seen = request_id:get("unset") .. "/" .. tenant:get("unset")
  tenant:set("worker-tenant")
  local tok = counter:set(-1)
  counter:reset(tok)
  return seen
end)

-- Answers later, from a timer: the changes still flow back.
w:routine("later", function(ms)
  wool.await(function(cb) local t = uv.new_timer(); t:start(ms, 0, function() t:close(); cb() end) end)
  request_id:set(request_id:get() .. "+later")
  return "late"
end)

-- A stream: set before the first yield, reset after the last.
w:stream("steps", function(first)
  local tok = tenant:set("streaming")
  local sent = coroutine.yield(first)
  local n = coroutine.yield("second:" .. tostring(sent))
  tenant:reset(tok)
  return "last:" .. tostring(n)
end)

-- A raised error with fields, after a change the caller gets back.
w:routine("fail", function(sku)
  counter:set(7)
  local err = core.error_new("ValueError", -22, "no such sku")
  err.fields.sku = sku
  error(err)
end)
w:routine("fail_plain", function() error("plain lua error") end)

-- Work on another thread. luv's new_work runs it in another Lua state. The
-- plain way carries a context there only under uvwool's preload object
-- (which captures libuv's uv_queue_work): the work then runs in the
-- dispatch's own context on a pool thread and trips the guard, whose error
-- comes back as strings (all luv carries) and is raised again here.
-- Without the preload the work sees no context at all.
w:routine("offload_plain", function()
  local seen, class, errno, message, fields = wool.await(function(cb)
    local work = uv.new_work(function()
      local wool = require "uvwool"
      local v = wool.find_var("t", "request_id")
      local ok, got = pcall(v.get, v, "nothing")
      if ok then return "thread saw " .. tostring(got) end
      local list = {}
      for k, x in pairs(got.fields) do list[#list + 1] = k .. "=" .. x end
      return nil, got.class, got.errno, got.message, table.concat(list, "\n")
    end, cb)
    uv.queue_work(work)
  end)
  if seen then return seen end
  local err = core.error_new(class, errno, message)
  for k, x in fields:gmatch("([^=\n]+)=([^\n]*)") do err.fields[k] = x end
  error(err)
end)
w:routine("offload_to_thread", function()
  return wool.await(function(cb)
    wool.to_thread(function()
      local wool = require "uvwool"
      return "thread saw " .. tostring(wool.find_var("t", "request_id"):get("nothing"))
    end, cb):queue()
  end)
end)

-- Cancellation: a one-shot waiting on a long timer stops at the hook; a
-- stream between steps gets the cancel raised at its yield.
w:routine("sleepy", function()
  local call = worker.call()
  local t = uv.new_timer()
  return wool.await(function(cb)
    call:on_cancel(function()
      cancel_seen = "one-shot hook"
      t:stop()
      t:close()
      cb("stopped")
    end)
    t:start(60000, 0, function() t:close(); cb("slept") end)
  end)
end)
w:stream("ticker", function()
  local ok, err = pcall(function()
    while true do coroutine.yield("tick") end
  end)
  cancel_seen = "stream " .. (type(err) == "table" and err.code or tostring(err))
  return "stopped"
end)
w:routine("cancel_seen", function() return cancel_seen end)
w:routine("stats", function()
  local s, l = w:stats(), w:limits()
  return ("dispatches=%d max_dispatches=%d max_chains=%d errors=%d"):format(
    s.dispatches, l.max_dispatches, l.max_chains, errors)
end)

print("listening on " .. w:listen(assert(arg[1], "usage: worker_routines.lua ADDRESS")))
io.stdout:flush()
local sig = uv.new_signal()
sig:start("sigterm", function()
  sig:close()
  w:close()
end)
uv.run()
