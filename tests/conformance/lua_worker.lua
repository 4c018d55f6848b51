-- The Lua worker of the conformance matrix: the routines every worker hosts
-- (tests/conformance/README.md), on luv's loop, listening on arg[1].
-- The plain offload trips the guard only under uvwool's preload object,
-- which the matrix preloads (luv's own work carries no context).
local wool = require "uvwool"
local dispatch = require "uvwool.dispatch"
local worker = require "uvwool.worker"
local core = require "uvwool_core"
local uv = require "luv"

local V = {}
for _, name in ipairs({"request_id", "tenant", "counter", "value", "back", "phase"}) do
  V[name] = wool.ContextVar("conf", name)
end
local UNBOUND = {}
local cancelled_hangs = 0

local w = dispatch.worker({})

w:routine("conf.echo", function(v) return v end)

w:routine("conf.reflect", function()
  local v = V.value:get(UNBOUND)
  if v == UNBOUND then return "<missing>" end
  V.back:set(v)
  return v
end)

w:routine("conf.mutate", function()
  V.tenant:set(V.tenant:get("") .. "+w")
  V.counter:set(V.counter:get(0) + 1)
  return V.request_id:get("<missing>")
end)

w:stream("conf.phases", function()
  local tok = V.phase:set("streaming")
  local ok, err = pcall(function()
    local sent = coroutine.yield(1)
    coroutine.yield(tostring(sent) .. "/" .. V.phase:get(""))
  end)
  V.phase:reset(tok)
  if not ok then error(type(err) == "table" and err.message or err, 0) end
  return "done"
end)

w:routine("conf.raise_after_set", function()
  local before = V.tenant:get("")
  V.tenant:set("raised")
  local err = core.error_new("RuntimeError", 0, "conf failure")
  err.fields.reason = "asked"
  err.fields.tenant = before
  error(err)
end)

-- Another Lua state runs the work: only strings and numbers come back, so
-- the guard's error is carried as its parts and raised again here.
w:routine("conf.offload_plain", function()
  local seen, class, errno, message, fields = wool.await(function(cb)
    uv.queue_work(uv.new_work(function()
      local v = require("uvwool").find_var("conf", "request_id")
      local ok, got = pcall(v.get, v, "<missing>")
      if ok then return got end
      local list = {}
      for k, x in pairs(got.fields) do list[#list + 1] = k .. "=" .. x end
      return nil, got.class, got.errno, got.message, table.concat(list, "\n")
    end, cb))
  end)
  if seen then return seen end
  local err = core.error_new(class, errno, message)
  for k, x in fields:gmatch("([^=\n]+)=([^\n]*)") do err.fields[k] = x end
  error(err)
end)

w:routine("conf.offload_to_thread", function()
  return wool.await(function(cb)
    wool.to_thread(function()
      return require("uvwool").find_var("conf", "request_id"):get("<missing>")
    end, cb):queue()
  end)
end)

local native_object = {}
w:routine("conf.bind_opaque", function()
  V.back:set(native_object)
  V.tenant:set("after-opaque")
  return "bound"
end)

w:routine("conf.hang", function()
  local call = worker.call()
  return wool.await(function(cb)
    call:on_cancel(function()
      cancelled_hangs = cancelled_hangs + 1
      cb(nil)
    end)
  end)
end)

w:routine("conf.cancelled_count", function() return cancelled_hangs end)

w:stream("conf.die_after_one", function()
  local t = uv.new_timer()
  t:start(20, 0, function() os.exit(0) end)
  coroutine.yield(1)
  os.exit(0) -- a later step is never answered: the process ends
end)

w:routine("conf.chain_id", function() return wool.chain_id() or "<unarmed>" end)

-- A connection per hop, closed after it: a worker keeps no outgoing
-- connection open.
w:routine("conf.hop", function(address, routine)
  local conn = dispatch.connect(address)
  local ok, result = pcall(conn.dispatch, conn, routine)
  conn:close()
  V.tenant:set(V.tenant:get("") .. "+hop")
  if not ok then error(result, 0) end
  return result
end)

print("listening on " .. w:listen(assert(arg[1], "usage: lua_worker.lua ADDRESS")))
io.stdout:flush()
local sig = uv.new_signal()
sig:start("sigterm", function()
  sig:close()
  w:close()
end)
uv.run()
