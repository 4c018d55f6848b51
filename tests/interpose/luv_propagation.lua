-- A luv program (luv's own loop, libuv loaded by luv.so) run with the
-- preload object: its callbacks see the C-side context of their
-- registration. usage: lua5.4 luv_propagation.lua propagated|plain
-- ("plain": without the preload, the control proving the checks can fail).
local uv = require "luv"
local var = require "uvwool_testvar"
local mode = arg[1]
assert(mode == "propagated" or mode == "plain", "usage: luv_propagation.lua propagated|plain")
local propagated = mode == "propagated"
local checks, failures = 0, 0

-- Propagated: a callback sees exactly its registration's value. Plain: it
-- sees something else (main's value at the time, which depends on timing).
local function expect(where, seen, registered)
  checks = checks + 1
  if (seen == registered) ~= propagated then
    failures = failures + 1
    print(string.format("FAIL %s: saw %s, registered %s", where, tostring(seen), registered))
  else
    print(string.format("ok   %s: %s", where, tostring(seen)))
  end
end

-- a timer: registered under "timer-A"; main sets "later" after it
var.set("timer-A")
local timer = uv.new_timer()
timer:start(5, 0, function()
  expect("timer callback", var.get(), "timer-A")
  -- a set inside the callback stays inside it (without propagation it leaks)
  var.set("inside-callback")
  timer:close()
end)
var.set("later")

-- a repeating timer: every repeat sees its registration's value
var.set("repeat-B")
local repeats = 0
local rep = uv.new_timer()
rep:start(1, 1, function()
  repeats = repeats + 1
  expect("repeat " .. repeats, var.get(), "repeat-B")
  if repeats == 3 then rep:close() end
end)
var.set("later")

-- an fs request (thread pool, callback back on luv's loop)
var.set("fs-C")
uv.fs_stat("/", function(err)
  expect("fs_stat callback", err == nil and var.get() or "error", "fs-C")
end)
var.set("later")

uv.run()
-- The timer callback's set stayed in the callback: main still has "later"
-- (without propagation callbacks share main's context and it leaks).
expect("main after the loop", var.get(), "later")
print(string.format("%d checks, %d failures", checks, failures))
os.exit(checks == 6 and failures == 0 and 0 or 1)
