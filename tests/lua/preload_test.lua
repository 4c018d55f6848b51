-- CTest lua.preload.<abi>: with uvwool's LD_PRELOAD object loaded, require
-- "uvwool.luv" leaves luv unwrapped (the preload object captures every
-- registration already: no capture twice) and callbacks still run in their
-- registration's context; without it (argument "plain") luv is wrapped.
-- Usage: <interpreter> preload_test.lua preload|plain
local mode = arg[1]
local wool = require "uvwool"
local wluv = require "uvwool.luv"
local uv = require "luv"

local function check(cond, what)
  if not cond then
    io.stderr:write("FAIL ", what, "\n")
    os.exit(1)
  end
end

check(wluv.preload == (mode == "preload"), "preload detected: " .. tostring(wluv.preload))
check(wluv.is_wrapper(uv.timer_start) == (mode ~= "preload"), "uv.timer_start wrapped: "
  .. tostring(wluv.is_wrapper(uv.timer_start)))

local v = wool.ContextVar("preload", "v")
local seen = {}
v:set("registered")
local t = uv.new_timer()
t:start(1, 0, function() seen.timer = v:get() t:close() end)
wool.spawn(function()
  v:set("task")
  local t2 = uv.new_timer()
  t2:start(2, 0, function() seen.task = v:get() t2:close() end)
end)
v:set("later")
uv.run()
check(seen.timer == "registered", "timer saw " .. tostring(seen.timer))
check(seen.task == "task", "task's timer saw " .. tostring(seen.task))
print("ok " .. mode)
