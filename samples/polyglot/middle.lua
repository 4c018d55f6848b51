-- The middle worker of the cross-language demo: Lua routines on luv's loop
-- that a Node caller dispatches to, and that dispatch on to the C worker
-- (samples/demo_routines.c). usage: lua5.4 middle.lua LISTEN_ADDRESS C_WORKER_ADDRESS
local wool = require "uvwool"
local dispatch = require "uvwool.dispatch"
local uv = require "luv"

local listen, c_worker = assert(arg[1]), assert(arg[2])
local request_id = wool.ContextVar("demo", "request_id")
local tenant = wool.ContextVar("demo", "tenant")
local deadline = wool.ContextVar("demo", "deadline")
local audit = wool.ContextVar("demo", "audit")
local route = wool.ContextVar("demo", "route")
local progress = wool.ContextVar("demo", "progress")

local function say(fmt, ...)
  io.write("        [lua worker] ", fmt:format(...), "\n")
  io.stdout:flush()
end

local function ms_left()
  local sec, usec = uv.gettimeofday()
  return deadline:get(0) - (sec * 1000 + usec // 1000)
end

-- One connection per hop, closed after it.
local function ask_c(routine, ...)
  local conn = dispatch.connect(c_worker)
  local ok, result = pcall(conn.dispatch, conn, routine, ...)
  conn:close()
  if not ok then error(result, 0) end
  return result
end

local w = dispatch.worker({})

w:routine("quote", function(sku)
  say("quote(%s) sees request_id=%s tenant=%s, %d ms left before the deadline", sku, request_id:get("-"),
      tenant:get("-"), ms_left())
  route:set(route:get("") .. " > lua")
  say("asks the C worker, on the same chain %s", wool.chain_id())
  local line = ask_c("quote", sku)
  say("the C worker answered; its audit note is here now: %s", audit:get("-"))
  route:set(route:get() .. " > c > lua")
  return "lua relayed: " .. line
end)

w:stream("export_report", function(format)
  local tok = progress:set("0%")
  for step = 1, 3 do
    progress:set(("%d%%"):format(step * 33))
    say("step %d for request_id=%s, format=%s, progress=%s", step, request_id:get("-"), format, progress:get())
    local sent = coroutine.yield(("step %d of 3 (%s)"):format(step, format))
    if sent then format = sent end
  end
  progress:reset(tok)
  say("done; progress reset to what the caller had")
  return "report ready"
end)

w:routine("thumbnail", function(way)
  say("thumbnail the %s way: the C worker offloads to its thread pool", way)
  return ask_c("thumbnail_" .. way)
end)

w:listen(listen)
print("ready")
io.stdout:flush()
local sig = uv.new_signal()
sig:start("sigterm", function()
  sig:close()
  w:close()
end)
uv.run()
