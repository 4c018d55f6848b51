-- Lua binding benchmarks, side by side in one run (not part of the tests):
--   <lua5.4|luajit> tests/bench/lua/bench.lua [scale]
-- with LUA_CPATH/LUA_PATH naming the module (CMake target bench_lua runs it
-- on both interpreters). Prints ns per operation, each case against its
-- baseline in the same process, with the issue's target:
--   - luv idle and timer(0) callback chains: plain luv vs uvwool.luv
--     (target: within +15 ns per callback);
--   - coroutine resume/yield: plain coroutine.resume (saved before
--     require "uvwool") vs the resume hook on a plain coroutine and on a
--     spawned task (target: within +15 ns);
--   - var:get() vs a plain Lua table field read, and vs CPython's
--     ContextVar.get() (timed here by python3 the same way, when there is
--     one; tests/bench/cpython_contextvars.py has the full CPython set).
-- Method: min of 5 runs of N iterations each, uv.hrtime.
local plain_resume = coroutine.resume -- before uvwool replaces it
local uv = require "luv"
local raw = {}
for _, name in ipairs({"idle_start", "timer_start"}) do raw[name] = uv[name] end
local wool = require "uvwool"
local wluv = require "uvwool.luv"

local scale = tonumber(arg and arg[1]) or 1
local RUNS = 5

local function best(n, fn)
  local min = math.huge
  for _ = 1, RUNS do
    collectgarbage()
    local t0 = uv.hrtime()
    fn(n)
    local dt = uv.hrtime() - t0
    if dt < min then min = dt end
  end
  return min / n
end

local rows = {}
-- One row: the case against its baseline, measured in this run, and the
-- issue's target for the difference (target_ns nil: no numeric target).
local function row(name, base_name, base, case, target_ns)
  local target = "-"
  if target_ns then
    target = ("+%d ns: %s"):format(target_ns, case - base <= target_ns and "within" or "over")
  end
  rows[#rows + 1] = ("%-38s %9.1f ns   %-26s %9.1f ns   %+9.1f ns  x%-7.2f %s"):format(
    name, case, base_name, base, case - base, case / base, target)
end

-- ---- luv callback chains ----
local function idle_chain(start)
  return function(n)
    local h, left = uv.new_idle(), n
    start(h, function()
      left = left - 1
      if left == 0 then uv.idle_stop(h) end
    end)
    uv.run()
    uv.close(h)
    uv.run()
  end
end

local function timer_chain(start)
  return function(n)
    local t, left = uv.new_timer(), n
    local function cb()
      left = left - 1
      if left > 0 then start(t, 0, 0, cb) end
    end
    start(t, 0, 0, cb)
    uv.run()
    uv.close(t)
    uv.run()
  end
end

local v = wool.ContextVar("bench", "v")
v:set("value") -- an armed context: the capture carries a chain
local n_cb = math.floor(200000 * scale)
row("luv idle callback, uvwool.luv", "plain luv", best(n_cb, idle_chain(raw.idle_start)),
  best(n_cb, idle_chain(uv.idle_start)), 15)
row("luv timer(0) restart+callback, uvwool", "plain luv", best(n_cb, timer_chain(raw.timer_start)),
  best(n_cb, timer_chain(uv.timer_start)), 15)

-- ---- coroutines ----
local n_co = math.floor(1000000 * scale)
local function loop_body() while true do coroutine.yield() end end
local function resumes(resume, co)
  return function(n) for _ = 1, n do resume(co) end end
end
local plain_co = coroutine.create(loop_body)
local hooked_co = coroutine.create(loop_body)
local task_co = wool.spawn(loop_body)
local base = best(n_co, resumes(plain_resume, plain_co))
row("resume+yield, hook, plain coroutine", "plain coroutine.resume", base,
  best(n_co, resumes(coroutine.resume, hooked_co)), 15)
row("resume+yield, spawned task", "plain coroutine.resume", base, best(n_co, resumes(coroutine.resume, task_co)), 15)

-- ---- reads ----
local n_get = math.floor(2000000 * scale)
local t = {field = "value"}
local sink
local get_ns = best(n_get, function(n) for _ = 1, n do sink = v:get() end end)
row("var:get()", "table field read", best(n_get, function(n) for _ = 1, n do sink = t.field end end), get_ns)
assert(sink == "value")

-- CPython's ContextVar.get() on a bound variable, timed the same way (min of
-- RUNS, the loop included), when a python3 is on PATH ($UVWOOL_PYTHON).
local PY = [[
import contextvars, timeit
v = contextvars.ContextVar("v")
v.set("value")
n = %d
print(min(timeit.Timer("v.get()", globals={"v": v}).repeat(%d, n)) / n * 1e9)
]]
local function cpython_get_ns(n)
  local out = os.tmpname()
  local pipe = io.popen(("%s - > %s 2>/dev/null"):format(os.getenv("UVWOOL_PYTHON") or "python3", out), "w")
  if not pipe then return nil end
  pipe:write(PY:format(n, RUNS))
  pipe:close()
  local f = io.open(out)
  local ns = f and tonumber(f:read("*l"))
  if f then f:close() end
  os.remove(out)
  return ns
end
local py_ns = cpython_get_ns(n_get)
if py_ns then row("var:get()", "CPython ContextVar.get()", py_ns, get_ns) end

print(("# %s, uvwool %s, luv %s, %s runs, scale %s"):format(jit and jit.version or _VERSION, wool.version,
  uv.version_string(), RUNS, scale))
print(("# %-36s %12s   %-26s %12s   %12s  %-8s %s"):format("case", "", "baseline", "", "overhead", "ratio",
  "target"))
for _, r in ipairs(rows) do print(r) end
