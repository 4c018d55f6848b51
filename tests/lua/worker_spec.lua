-- busted spec of uvwool.worker: a Lua worker (tests/lua/worker_routines.lua)
-- in a separate process, on its own luv loop, dispatched to with
-- uvwool.dispatch's caller API. CTest names the interpreter in UVWOOL_LUA.
local wool = require "uvwool"
local dispatch = require "uvwool.dispatch"
local uv = require "luv"

local LUA = assert(os.getenv("UVWOOL_LUA"), "UVWOOL_LUA names the Lua interpreter of this run")
local SCRIPT = debug.getinfo(1, "S").source:match("^@(.*)spec%.lua$") .. "routines.lua"

-- dispatch_spec.lua may have declared these already in this process.
local function var(name) return wool.find_var("t", name) or wool.ContextVar("t", name) end
local request_id, tenant, counter = var("request_id"), var("tenant"), var("counter")

local helpers = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "loop_helpers.lua")
local run_until, in_task = helpers.run_until, helpers.in_task

-- uvwool's LD_PRELOAD object (CTest: UVWOOL_PRELOAD), for the worker run
-- whose plain luv work inherits the dispatch's context.
local PRELOAD = os.getenv("UVWOOL_PRELOAD")

-- The environment of a worker run under the preload object (after the
-- sanitizer runtime when this run has one).
local function preload_env()
  local env = {}
  for _, name in ipairs({"PATH", "LUA_PATH", "LUA_CPATH", "ASAN_OPTIONS", "TMPDIR"}) do
    if os.getenv(name) then env[#env + 1] = name .. "=" .. os.getenv(name) end
  end
  local first = os.getenv("LD_PRELOAD")
  env[#env + 1] = "LD_PRELOAD=" .. (first and first .. " " or "") .. PRELOAD
  return env
end

-- The Lua worker on a fresh socket; {address, stop}.
local function start_worker(preloaded)
  local path = ("%s/uvwool-luaw-%d-%s.sock"):format(os.getenv("TMPDIR") or "/tmp", uv.os_getpid(),
    preloaded and "p" or "w")
  os.remove(path)
  local out = uv.new_pipe(false)
  local w, buf = {exited = false}, ""
  w.handle, w.pid = uv.spawn(LUA, {args = {SCRIPT, "pipe:" .. path}, stdio = {nil, out, 2},
    env = preloaded and preload_env() or nil},
    function(code, signal) w.exited, w.code, w.signal = true, code, signal end)
  assert(w.handle, w.pid)
  out:read_start(function(_, data) if data then buf = buf .. data end end)
  run_until(function() return buf:find("listening on", 1, true) ~= nil or w.exited end, 30000)
  assert(not w.exited, "the Lua worker exited before listening")
  w.address = buf:match("listening on (%S+)")
  function w.stop()
    if not w.exited then uv.kill(w.pid, "sigterm") end
    run_until(function() return w.exited end)
    out:read_stop()
    out:close()
    w.handle:close()
    uv.run("nowait")
    assert.are.equal(0, w.code)
    assert.is_nil(io.open(path), "the socket file is removed at close")
  end
  return w
end

describe("a worker hosting Lua routines", function()
  local worker, conn
  setup(function() worker = start_worker() end)
  teardown(function() worker.stop() end)
  before_each(function() conn = dispatch.connect(worker.address, {timeout = 5000}) end)
  after_each(function() conn:close(); uv.run("nowait") end)

  it("listens at the address it reports", function()
    assert.is_truthy(worker.address:match("^pipe:.*uvwool%-luaw%-%d+%-w%.sock$"))
  end)

  it("carries values both ways", function()
    local ok, sum, kinds, s = in_task(function()
      return conn:dispatch("add", 40, 2), conn:dispatch("kinds", 1, 2.5, "x", true, nil, 3),
        conn:dispatch("concat", "a\0b", "c")
    end)
    assert.is_true(ok, tostring(sum))
    assert.are.equal(42, sum)
    if math.type then
      assert.are.equal("integer", math.type(sum))
      assert.are.equal("integer,float,string,boolean,nil,integer", kinds)
    else
      assert.are.equal("number,number,string,boolean,nil,number", kinds)
    end
    assert.are.equal("a\0bc", s)
  end)

  it("runs the routine in the caller's context and applies its set and reset back", function()
    local ok, seen, t, n = in_task(function()
      request_id:set("r-1")
      tenant:set("caller-tenant")
      counter:set(5)
      return conn:dispatch("read_and_mutate"), tenant:get(), counter:get()
    end)
    assert.is_true(ok, tostring(seen))
    assert.are.equal("r-1/caller-tenant", seen)
    assert.are.equal("worker-tenant", t)
    assert.are.equal(5, n)
    assert.are.equal("-", tenant:get("-")) -- the main context saw nothing
  end)

  it("answers later from the worker's loop with the changes", function()
    local ok, v, r = in_task(function()
      request_id:set("r-2")
      return conn:dispatch("later", 30), request_id:get()
    end)
    assert.is_true(ok, tostring(v))
    assert.are.equal("late", v)
    assert.are.equal("r-2+later", r)
  end)

  it("streams: set before the first yield seen after it, the reset after the last", function()
    local ok, steps = in_task(function()
      tenant:set("mine")
      local s = conn:stream("steps", "first")
      local out = {}
      local v, done = s:next()
      out[#out + 1] = {v, done or false, tenant:get()}
      v, done = s:send(9)
      out[#out + 1] = {v, done or false, tenant:get()}
      v, done = s:send(10)
      out[#out + 1] = {v, done, tenant:get()}
      return out
    end)
    assert.is_true(ok, tostring(steps))
    assert.same({{"first", false, "streaming"}, {"second:9", false, "streaming"}, {"last:10", true, "mine"}}, steps)
  end)

  it("raises the routine's error with its class and fields, and the change made before it", function()
    local ok, err, n = in_task(function()
      counter:set(1)
      local ok2, e = pcall(conn.dispatch, conn, "fail", "sku-9")
      assert.is_false(ok2)
      return e, counter:get()
    end)
    assert.is_true(ok, tostring(err))
    assert.is_true(wool.is_error(err, "ValueError"), tostring(err))
    assert.are.equal("no such sku", err.message)
    assert.are.equal("sku-9", err.fields.sku)
    assert.are.equal(7, n)
    local ok3, plain = in_task(function() return select(2, pcall(conn.dispatch, conn, "fail_plain")) end)
    assert.is_true(ok3)
    assert.are.equal("UVW_EREMOTE", plain.code)
    assert.is_truthy(tostring(plain.message):find("plain lua error", 1, true))
  end)

  it("plain luv work sees no context (another Lua state); to_thread sees the caller's values", function()
    local ok, plain, forked = in_task(function()
      request_id:set("r-thread")
      return conn:dispatch("offload_plain"), conn:dispatch("offload_to_thread")
    end)
    assert.is_true(ok, tostring(plain))
    assert.are.equal("thread saw nothing", plain)
    assert.are.equal("thread saw r-thread", forked)
  end)

  it("refuses a routine that does not exist", function()
    local ok, err = in_task(function() return select(2, pcall(conn.dispatch, conn, "no_such_routine")) end)
    assert.is_true(ok)
    assert.is_true(wool.is_error(err, "WoolError"), tostring(err))
    assert.are.equal("UVW_ENACK", err.code)
    assert.is_truthy(tostring(err.message):find("no_such_routine", 1, true), err.message)
  end)

  it("tells a waiting one-shot routine of the cancel, and raises it in a stream at its yield", function()
    local done
    local c2 = dispatch.connect(worker.address)
    c2:dispatch_cb("sleepy", {}, function(err) done = err end)
    run_until(function() return select(2, c2:state()) == 1 and uv.now() > 0 end)
    local t = uv.new_timer()
    local waited = false
    t:start(200, 0, function() waited = true end)
    run_until(function() return waited end)
    t:close()
    c2:close()
    run_until(function() return done ~= nil end)
    assert.are.equal("UVW_ECANCELED", done.code)
    local ok, seen = in_task(function()
      local s
      for _ = 1, 50 do
        s = conn:dispatch("cancel_seen")
        if s ~= "nothing" then break end
      end
      return s
    end)
    assert.is_true(ok, tostring(seen))
    assert.are.equal("one-shot hook", seen)

    local ok2, seen2 = in_task(function()
      local s = conn:stream("ticker")
      assert.are.equal("tick", s:next())
      s:close()
      local v
      for _ = 1, 50 do
        v = conn:dispatch("cancel_seen")
        if v ~= "one-shot hook" then break end
      end
      return v
    end)
    assert.is_true(ok2, tostring(seen2))
    assert.are.equal("stream UVW_ECANCELED", seen2)
  end)

  it("applies the limits it was opened with", function()
    local ok, s = in_task(function() return conn:dispatch("stats") end)
    assert.is_true(ok, tostring(s))
    assert.is_truthy(s:find("max_dispatches=32 max_chains=4", 1, true), s)
  end)
end)

describe("a Lua worker under uvwool's preload object", function()
  if not PRELOAD then
    pending("UVWOOL_PRELOAD is not set (no preload object built)")
    return
  end
  local worker, conn
  setup(function() worker = start_worker(true) end)
  teardown(function() worker.stop() end)
  before_each(function() conn = dispatch.connect(worker.address, {timeout = 5000}) end)
  after_each(function() conn:close(); uv.run("nowait") end)

  it("plain luv work touching a variable trips the guard: ChainContention reaches the caller", function()
    local ok, err, forked = in_task(function()
      request_id:set("r-guard")
      local ok2, e = pcall(conn.dispatch, conn, "offload_plain")
      assert.is_false(ok2)
      return e, conn:dispatch("offload_to_thread")
    end)
    assert.is_true(ok, tostring(err))
    assert.is_true(wool.is_error(err, "ChainContention"), tostring(err))
    assert.are.equal("UVW_EREMOTE", err.code)
    assert.are.equal("thread", err.fields.kind)
    assert.are.equal("get", err.fields.operation)
    assert.are.equal("(t, request_id)", err.fields.variable)
    assert.are.equal(32, #err.fields.chain_id)
    assert.are_not.equal(err.fields.owner_thread, err.fields.offending_thread)
    assert.are.equal("thread saw r-guard", forked)
  end)
end)
