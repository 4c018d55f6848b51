-- Headless Neovim test (CTest lua.nvim): a plugin-style script on vim.loop
-- (Neovim's LuaJIT and luv) whose spawned tasks each see their own value in
-- timer and fs callbacks, with callback errors going to Neovim's handler.
-- Run as: nvim --headless -u NONE -i NONE -n -c "luafile tests/lua/nvim_test.lua"
-- with UVWOOL_LUA_CPATH / UVWOOL_LUA_PATH naming this build's module and layer.
local t = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "nvim_helpers.lua")
local check = t.check

local ok, err = pcall(function()
  local wool = require "uvwool"
  local wluv = require "uvwool.luv"
  local uv = vim.loop
  check(wluv.is_wrapper(uv.timer_start) and wluv.is_wrapper(uv.new_timer().start), "vim.loop is wrapped")

  local request = wool.ContextVar("nvim.plugin", "request")
  request:set("editor")

  -- The plugin: each task awaits a timer and an fs_stat through coroutine
  -- resumes made from the callbacks.
  local results, done = {}, 0
  local function await(start)
    local co = coroutine.running()
    start(function(...) coroutine.resume(co, ...) end)
    return coroutine.yield()
  end
  for i = 1, 3 do
    wool.spawn(function()
      request:set("req-" .. i)
      local seen = {}
      await(function(cb)
        local t = uv.new_timer()
        t:start(5 * (4 - i), 0, function() seen.timer = request:get() t:close() cb() end)
      end)
      seen.after_timer = request:get()
      local _, st = await(function(cb)
        uv.fs_stat(os.getenv("UVWOOL_NVIM_SCRIPT"), function(e, s) seen.fs = request:get() cb(e, s) end)
      end)
      seen.after_fs = request:get()
      seen.size = st and st.size or -1
      results[i] = seen
      done = done + 1
    end)
  end

  -- A callback that raises: Neovim's handler reports it, the loop's
  -- context is back for the next callback.
  local t = uv.new_timer()
  request:set("before error")
  t:start(1, 0, function() request:set("leaked") t:close() error("uvwool-nvim-boom") end)
  local unbound = wool.ContextVar("nvim.plugin", "unbound")
  local t3 = uv.new_timer()
  t3:start(2, 0, function() t3:close() unbound:get() end) -- raises a uvwool error object
  request:set("editor")

  check(vim.wait(5000, function() return done == 3 end, 5), "tasks finished")
  local after
  local t2 = uv.new_timer()
  request:set("probe")
  t2:start(1, 0, function() after = request:get() t2:close() end)
  vim.wait(2000, function() return after ~= nil end, 5)
  check(after == "probe", "callback after an error runs in its own capture: " .. tostring(after))
  check(request:get() == "probe", "the editor's own value: " .. tostring(request:get()))
  -- v:errmsg keeps the last error: the LookupError raised after the boom
  check(tostring(vim.v.errmsg):find("LookupError: context variable (nvim.plugin, unbound)", 1, true) ~= nil,
    "the callback's error object reached Neovim's handler as text: " .. tostring(vim.v.errmsg))
  for i = 1, 3 do
    local s = results[i] or {}
    local want = "req-" .. i
    check(s.timer == want and s.after_timer == want and s.fs == want and s.after_fs == want and s.size > 0,
      ("task %d saw timer=%s after=%s fs=%s after=%s size=%s"):format(i, tostring(s.timer),
        tostring(s.after_timer), tostring(s.fs), tostring(s.after_fs), tostring(s.size)))
  end
end)
t.finish("nvim test", ok, err)
