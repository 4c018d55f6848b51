-- busted spec of require "uvwool.dispatch" against a real uvwool-worker
-- (the C executable) serving tests/dispatch/routines.c over a unix socket,
-- on luv's loop. CTest passes the worker and the routine library in
-- UVWOOL_WORKER and UVWOOL_TEST_ROUTINES.
local wool = require "uvwool"
local dispatch = require "uvwool.dispatch"
local uv = require "luv"

local WORKER = assert(os.getenv("UVWOOL_WORKER"), "UVWOOL_WORKER names the uvwool-worker executable")
local ROUTINES = assert(os.getenv("UVWOOL_TEST_ROUTINES"), "UVWOOL_TEST_ROUTINES names the routine library")

-- The routines read and write these (namespace "t").
local request_id = wool.ContextVar("t", "request_id")
local tenant = wool.ContextVar("t", "tenant")
local counter = wool.ContextVar("t", "counter")

local is54 = math.type ~= nil

local helpers = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "loop_helpers.lua")
local run_until, in_task = helpers.run_until, helpers.in_task

local sock_seq = 0
-- Start a worker on a fresh unix socket; returns {address, kill, stop}.
-- It runs under timeout(1): a test process that dies without stopping it
-- (luv's handler exits on an error in a callback) leaves no worker behind
-- for long. Signals go to the worker itself (timeout's child, read from
-- /proc), never through timeout: timeout can die of the SIGTERM it is
-- forwarding and orphan the worker, which then holds CTest's pipes.
local function start_worker()
  sock_seq = sock_seq + 1
  local path = ("%s/uvwool-lua-%d-%d.sock"):format(os.getenv("TMPDIR") or "/tmp", uv.os_getpid(), sock_seq)
  os.remove(path)
  local out = uv.new_pipe(false)
  local w = {address = "pipe:" .. path, exited = false}
  local buf = ""
  local args = {"--foreground", "60", WORKER, "--routines", ROUTINES, "--listen", w.address}
  w.handle, w.pid = uv.spawn("timeout", {args = args, stdio = {nil, out, 2}},
    function(code, signal)
      w.exited, w.code, w.signal = true, code, signal
    end)
  assert(w.handle, w.pid)
  out:read_start(function(_, data) if data then buf = buf .. data end end)
  run_until(function() return buf:find("listening on", 1, true) ~= nil end, 60000)
  local f = assert(io.open(("/proc/%d/task/%d/children"):format(w.pid, w.pid)))
  w.worker_pid = assert(tonumber(f:read("*l"):match("%d+")), "the worker runs under timeout")
  f:close()
  local function finish(sig)
    if not w.exited then uv.kill(w.worker_pid, sig) end
    run_until(function() return w.exited end)
    out:read_stop()
    out:close()
    w.handle:close()
    uv.run("nowait")
  end
  function w.kill() finish("sigkill") end
  function w.stop()
    finish("sigterm")
    assert.are.equal(0, w.code)
  end
  return w
end


describe("uvwool.dispatch against a uvwool-worker", function()
  local worker, conn
  before_each(function()
    worker = start_worker()
    conn = dispatch.connect(worker.address)
  end)
  after_each(function()
    conn:close()
    uv.run("nowait")
    worker.stop()
  end)

  it("returns the routine's value and applies its changes to the calling coroutine", function()
    local ok, seen, after, n = in_task(function()
      request_id:set("r-1")
      local v = conn:dispatch("read_and_mutate", 41)
      return v, request_id:get(), counter:get()
    end)
    assert.is_true(ok, tostring(seen))
    assert.are.equal("saw:r-1", seen)
    assert.are.equal("r-1+worker", after)
    assert.are.equal(42, n)
    if is54 then assert.are.equal("integer", math.type(n)) end
    -- nothing leaked into the main context
    assert.are.equal("-", request_id:get("-"))
  end)

  it("keeps each coroutine's changes its own", function()
    local seen = {}
    for i = 1, 3 do
      wool.spawn(function()
        request_id:set("co-" .. i)
        local ok, v = pcall(conn.dispatch, conn, "read_and_mutate", i)
        seen[i] = {v, request_id:get(), counter:get("-"), ok}
      end)
    end
    run_until(function() return seen[1] and seen[2] and seen[3] end)
    for i = 1, 3 do
      assert.same({"saw:co-" .. i, "co-" .. i .. "+worker", i + 1, true}, seen[i])
    end
  end)

  it("keeps tokens set before the dispatch valid in the coroutine", function()
    local ok, back, old = in_task(function()
      request_id:set("outer")
      local tok = request_id:set("inner")
      conn:dispatch("read_and_mutate", 0)
      request_id:reset(tok)
      return request_id:get(), tok.old_value
    end)
    assert.is_true(ok, tostring(back))
    assert.are.equal("outer", back)
    assert.are.equal("outer", old)
  end)

  it("raises the routine's error as an error object, with the changes made before it", function()
    local ok, err, after = in_task(function()
      request_id:set("before")
      local ok2, e = pcall(conn.dispatch, conn, "raise_after_set")
      assert(not ok2)
      return e, request_id:get()
    end)
    assert.is_true(ok, tostring(err))
    assert.are.equal("UVW_EREMOTE", err.code)
    assert.is_true(err:is_a("WoolError"))
    assert.are.equal("AppError", err.fields.wire_type)
    assert.are.equal("asked to", err.fields.reason)
    assert.matches("asked to fail", err.message)
    assert.are.equal("set-before-raise", after)
  end)

  it("calls back outside coroutines, in the dispatching context with the changes", function()
    local got
    request_id:with("cb", function()
      conn:dispatch_cb("read_and_mutate", {7}, function(err, v)
        got = {err, v, request_id:get(), counter:get()}
      end)
    end)
    run_until(function() return got ~= nil end)
    assert.same({nil, "saw:cb", "cb+worker", 8}, {got[1], got[2], got[3], got[4]})
    assert.are.equal("-", request_id:get("-"))
  end)

  it("hands a callback the routine's error", function()
    local got
    conn:dispatch_cb("raise_after_set", {}, function(err, v) got = {err, v} end)
    run_until(function() return got ~= nil end)
    assert.are.equal("UVW_EREMOTE", got[1].code)
    assert.are.equal("AppError", got[1].fields.wire_type)
    assert.is_nil(got[2])
  end)

  it("cancels a pending one-shot dispatch: the callback runs later, from the loop", function()
    local function cancelled_count()
      local n
      conn:dispatch_cb("cancelled_count", {}, function(_, v) n = v end)
      run_until(function() return n ~= nil end)
      return n
    end
    local before = cancelled_count()
    local got
    local pending = conn:dispatch_cb("hang", {}, function(err, v) got = {err, v} end)
    assert.is_true(pending:cancel())
    assert.is_nil(got) -- never inside the call that decided it
    assert.is_false(pending:cancel()) -- already decided
    run_until(function() return got ~= nil end)
    assert.are.equal("UVW_ECANCELED", got[1].code)
    assert.is_false(pending:cancel()) -- answered
    assert.are.equal(before + 1, cancelled_count()) -- the worker was told
  end)

  it("streams: next, send, throw, each step applied to the coroutine", function()
    local ok, r = in_task(function()
      request_id:set("s")
      local s = conn:stream("counter_stream")
      local out = {}
      out.v1 = s:next()
      out.tenant1, out.counter1 = tenant:get(), counter:get()
      out.v2 = s:next() -- the routine resets tenant with the token of step 1
      out.tenant2 = tenant:get("-")
      out.v3 = s:send(10)
      out.counter3 = counter:get()
      out.v4, out.done4 = s:throw("stop")
      out.done = s:done()
      s:close()
      return out
    end)
    assert.is_true(ok, tostring(r))
    assert.are.equal("1:s:stream-tenant", r.v1)
    assert.are.equal("stream-tenant", r.tenant1)
    assert.are.equal(1, r.counter1)
    assert.are.equal("reset:ok", r.v2)
    assert.are.equal("-", r.tenant2)
    assert.are.equal(20, r.v3)
    assert.are.equal(10, r.counter3)
    assert.are.equal("caught:stop", r.v4)
    assert.is_true(r.done4)
    assert.is_true(r.done)
  end)

  it("iterates a stream with a generic for until its end", function()
    local ok, values, result = in_task(function()
      request_id:set("it")
      local s = conn:stream("counter_stream")
      local values = {}
      for v in s do values[#values + 1] = v end
      return values, s.result
    end)
    assert.is_true(ok, tostring(values))
    assert.same({"1:it:stream-tenant", "reset:ok", "3:it:-", "4:it:-", "5:it:-"}, values)
    assert.are.equal("end", result)
  end)

  it("streams with callbacks outside coroutines", function()
    local s = conn:stream("counter_stream")
    local got = {}
    request_id:with("cbs", function()
      s:next_cb(function(err, v)
        got[1] = {err, v, tenant:get("-")}
        s:send_cb(3, function(err2, v2) got[2] = {err2, v2, counter:get()} end)
      end)
    end)
    run_until(function() return got[2] ~= nil end)
    s:close()
    assert.same({nil, "1:cbs:stream-tenant", "stream-tenant"}, {got[1][1], got[1][2], got[1][3]})
    assert.same({nil, 6, 3}, {got[2][1], got[2][2], got[2][3]})
    assert.are.equal("-", tenant:get("-"))
  end)

  it("dispatches through a pool", function()
    local pool = dispatch.pool({worker.address})
    local ok, pid = in_task(function() return pool:dispatch("whoami") end)
    pool:close()
    assert.is_true(ok, tostring(pid))
    assert.are.equal(worker.worker_pid, pid)
  end)
end)

describe("uvwool.dispatch failures", function()
  it("raises UVW_ECONNRESET when the worker dies, and leaves the context unchanged", function()
    local worker = start_worker()
    local conn = dispatch.connect(worker.address)
    local result
    wool.spawn(function()
      request_id:set("kept")
      local ok, err = pcall(conn.dispatch, conn, "hang")
      result = {ok, err, request_id:get(), counter:get("-")}
    end)
    run_until(function() return select(2, conn:state()) == 1 end)
    worker.kill()
    run_until(function() return result ~= nil end)
    assert.is_false(result[1])
    assert.are.equal("UVW_ECONNRESET", result[2].code)
    assert.is_true(result[2]:is_a("WoolError"))
    assert.are.equal("kept", result[3])
    assert.are.equal("-", result[4])
    assert.are.equal("dead", (conn:state()))
    -- a new dispatch on the dead connection is refused at once
    local ok, err = in_task(function() return conn:dispatch("echo", 1) end)
    assert.is_false(ok)
    assert.are.equal("UVW_ECONNRESET", err.code)
    assert.matches("lost", err.message)
    conn:close()
    assert.are.equal("closed", (conn:state()))
  end)

  it("fails a dispatch to an address nobody listens on", function()
    local conn = dispatch.connect("pipe:/nonexistent/uvwool-lua.sock")
    local got
    conn:dispatch_cb("echo", {1}, function(err) got = err end)
    run_until(function() return got ~= nil end)
    conn:close()
    assert.are.equal("UVW_ECONNRESET", got.code)
  end)

  it("refuses bad input with clear errors and changes nothing", function()
    local conn = dispatch.connect("pipe:/nonexistent/uvwool-lua.sock")
    local function class_of(f, ...)
      local ok, err = pcall(f, ...)
      assert.is_false(ok)
      return err.class, err.message
    end
    local cls, msg = class_of(conn.dispatch, conn, "echo", 1)
    assert.are.equal("ValueError", cls)
    assert.matches("coroutine", msg)
    assert.are.equal("ValueError", class_of(conn.dispatch_cb, conn, 42, {}, print))
    assert.are.equal("ValueError", class_of(conn.dispatch_cb, conn, "echo", "x", print))
    assert.are.equal("ValueError", class_of(conn.dispatch_cb, {}, "echo", {}, print))
    assert.are.equal("ValueError", class_of(dispatch.connect, 7))
    assert.are.equal("ValueError", class_of(dispatch.connect, "nowhere:x"))
    -- an opaque Lua value has no codec: refused before anything is sent
    local ok, err = pcall(conn.dispatch_cb, conn, "echo", {{}}, print)
    assert.is_false(ok)
    assert.is_true(err:is_a("WoolError"))
    assert.are.equal(0, select(2, conn:state()))
    conn:close()
    assert.are.equal("ValueError", class_of(conn.dispatch_cb, conn, "echo", {}, print))
    assert.are.equal("-", request_id:get("-"))
  end)

  it("refuses a step on a closed stream", function()
    local worker = start_worker()
    local conn = dispatch.connect(worker.address)
    local s = conn:stream("counter_stream")
    s:close()
    local ok, err = pcall(s.next_cb, s, print)
    assert.is_false(ok)
    assert.are.equal("ValueError", err.class)
    assert.matches("closed", err.message)
    conn:close()
    worker.stop()
  end)

  it("tells a coroutine resumed by someone else while it waits", function()
    local worker = start_worker()
    local conn = dispatch.connect(worker.address)
    local result
    local co = wool.spawn(function()
      local ok, err = pcall(conn.dispatch, conn, "sleep", 200)
      result = {ok, err}
    end)
    coroutine.resume(co, "stranger")
    assert.is_false(result[1])
    assert.are.equal("RuntimeError", result[2].class)
    assert.matches("resumed by someone else", result[2].message)
    conn:close()
    uv.run("nowait")
    worker.stop()
  end)
end)
