-- Headless Neovim test (CTest lua.nvim_dispatch): a plugin dispatching to a
-- real uvwool-worker on vim.loop. Three spawned tasks each dispatch with
-- their own request id and get the worker's changes applied to themselves
-- only; a callback-style dispatch and a stream do the same outside tasks.
-- Run as: nvim --headless -u NONE -i NONE -n -c "luafile tests/lua/nvim_dispatch_test.lua"
-- with UVWOOL_LUA_CPATH / UVWOOL_LUA_PATH naming this build's module and
-- layer, UVWOOL_WORKER and UVWOOL_TEST_ROUTINES the worker and its routines
-- (tests/dispatch/routines.c).
local t = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "nvim_helpers.lua")
local check = t.check
local function show(t)
  local parts = {}
  for i = 1, #t do parts[i] = tostring(t[i]) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

local uv = vim.loop
local worker -- {handle, pid, exited}

local ok, err = pcall(function()
  local wool = require "uvwool"
  local dispatch = require "uvwool.dispatch"
  -- What the routines read and write (namespace "t").
  local request_id = wool.ContextVar("t", "request_id")
  local tenant = wool.ContextVar("t", "tenant")
  local counter = wool.ContextVar("t", "counter")

  local path = ("%s/uvwool-nvim-%d.sock"):format(os.getenv("TMPDIR") or "/tmp", uv.os_getpid())
  os.remove(path)
  local out, banner = uv.new_pipe(false), ""
  -- Under timeout(1), and with no stderr of ours: if Neovim dies before
  -- stopping it, the worker neither outlives the minute nor holds CTest's
  -- pipes. It is stopped by its own pid (timeout's child), as
  -- dispatch_spec.lua does.
  worker = {exited = false}
  worker.handle, worker.timeout_pid = uv.spawn("timeout", {
    args = {"--foreground", "60", assert(os.getenv("UVWOOL_WORKER")),
            "--routines", assert(os.getenv("UVWOOL_TEST_ROUTINES")), "--listen", "pipe:" .. path},
    stdio = {nil, out, nil},
  }, function() worker.exited = true end)
  assert(worker.handle, worker.timeout_pid)
  out:read_start(function(_, data) if data then banner = banner .. data end end)
  assert(vim.wait(30000, function() return banner:find("listening on", 1, true) ~= nil end, 5),
    "the worker did not start listening: " .. banner)
  local f = assert(io.open(("/proc/%d/task/%d/children"):format(worker.timeout_pid, worker.timeout_pid)))
  worker.pid = assert(tonumber(f:read("*l"):match("%d+")), "the worker runs under timeout")
  f:close()

  local conn = dispatch.connect("pipe:" .. path)
  request_id:set("editor")

  -- Coroutine style, in tasks: each sees its own id and only its own changes.
  local results = {}
  for i = 1, 3 do
    wool.spawn(function()
      request_id:set("nvim-" .. i)
      local pok, v = pcall(conn.dispatch, conn, "read_and_mutate", i * 10)
      results[i] = {pok, v, request_id:get(), counter:get("-")}
    end)
  end

  -- Callback style, outside tasks: the callback runs in the dispatching
  -- context with the worker's changes, which stay in it.
  local got
  request_id:with("cb", function()
    conn:dispatch_cb("read_and_mutate", {7}, function(e, v)
      got = {e, v, request_id:get(), counter:get("-")}
    end)
  end)

  -- A stream, stepped from a task: each step's changes applied there.
  local streamed
  wool.spawn(function()
    request_id:set("s")
    local s = conn:stream("counter_stream")
    local v1 = s:next()
    local t1 = tenant:get("-")
    local v2 = s:next()
    streamed = {v1, t1, v2, tenant:get("-"), counter:get("-")}
    s:close()
  end)

  check(vim.wait(10000, function() return results[3] and results[2] and results[1] and got and streamed end, 5),
    "every dispatch answered")
  for i = 1, 3 do
    local want = {true, "saw:nvim-" .. i, "nvim-" .. i .. "+worker", i * 10 + 1}
    check(vim.deep_equal(results[i], want), ("task %d: %s, want %s"):format(i, show(results[i] or {}), show(want)))
  end
  check(got ~= nil and got[1] == nil and got[2] == "saw:cb" and got[3] == "cb+worker" and got[4] == 8,
    "callback dispatch: " .. show(got or {}))
  check(vim.deep_equal(streamed, {"1:s:stream-tenant", "stream-tenant", "reset:ok", "-", 2}),
    "stream: " .. show(streamed or {}))
  check(request_id:get() == "editor" and counter:get("-") == "-",
    "the editor's context kept its own values: " .. tostring(request_id:get()) .. " " .. tostring(counter:get("-")))

  -- A closed connection: a clear error object, raised at the call.
  conn:close()
  local cok, cerr = pcall(conn.dispatch_cb, conn, "echo", {1}, function() end)
  check(not cok and type(cerr) == "table" and cerr.code ~= nil and cerr:is_a("WoolError"),
    "dispatch on a closed connection raises a WoolError: " .. tostring(cerr))
end)
if worker and worker.pid and not worker.exited then
  uv.kill(worker.pid, "sigterm")
  vim.wait(5000, function() return worker.exited end, 5)
end
t.finish("nvim dispatch test", ok, err)
