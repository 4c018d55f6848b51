-- uvwool.luv: context propagation through luv callbacks, without LD_PRELOAD.
--
--   local wool = require "uvwool"
--   require "uvwool.luv"          -- patches luv (require "luv" / vim.loop)
--
-- Every luv function that registers a callback, in both forms (uv.x(h, ...)
-- and h:x(...), the handle methods being the same C functions in luv's
-- metatables in the registry), is replaced by a wrapper that turns each
-- callback argument into a capture: a C closure holding the context current
-- at registration (a copy) and the current task. luv calls the capture, which
-- enters that context (and task) around the callback and restores the
-- previous one after, also when the callback raises; the error goes on to
-- luv's own handler (its cb_pcall, Neovim's included, is left in place: a
-- capture is an ordinary function to it).
--
-- One capture per registration: a multi-shot registration (a repeating
-- timer, read_start, an idle handle) sees its previous event's writes. A
-- capture is released when luv drops the callback (a new start, close and
-- the handle's collection), so its context lives until then.
--
-- Functions luv dumps to another Lua state (the work of new_work, the entry
-- of new_thread) cannot be captures: a C closure cannot travel. new_work's
-- after-callback, which runs on the loop, is captured at each queue (M.WORK);
-- new_thread is left alone (M.UNFINISHED). uvwool.to_thread and
-- uvwool.new_thread carry the context to the other state, encoded.
local core = require "uvwool_core"

local M = {}

local function words(s)
  local t = {}
  for w in s:gmatch("%S+") do t[w] = true end
  return t
end

-- luv's functions that register a callback. Each is wrapped.
M.CALLBACK = words [[
  timer_start idle_start check_start prepare_start
  fs_event_start fs_poll_start signal_start signal_start_oneshot poll_start
  listen read_start write write2 shutdown tcp_connect pipe_connect close
  udp_recv_start udp_send
  getaddrinfo getnameinfo random spawn new_async
  fs_access fs_chmod fs_chown fs_close fs_closedir fs_copyfile fs_fchmod
  fs_fchown fs_fdatasync fs_fstat fs_fsync fs_ftruncate fs_futime fs_lchown
  fs_link fs_lstat fs_lutime fs_mkdir fs_mkdtemp fs_mkstemp fs_open
  fs_opendir fs_read fs_readdir fs_readlink fs_realpath fs_rename fs_rmdir
  fs_scandir fs_sendfile fs_stat fs_statfs fs_symlink fs_unlink fs_utime
  fs_write
]]

-- luv's thread-pool work: the work function runs on another Lua state
-- (dumped: a capture cannot travel there, and it sees no context, as with
-- plain luv); its after-callback runs on the loop, in the context captured
-- at each queue (queue_work and work:queue), as any registration.
-- uvwool.to_thread also carries the context to the work.
M.WORK = words [[ new_work queue_work ]]

-- Callback-taking functions not wrapped yet, by family, with the reason.
M.UNFINISHED = {
  new_thread = "the entry point runs on another Lua state and nothing of it on the loop: use uvwool.new_thread",
}

-- Functions whose callback runs during the call itself, in the caller's
-- context: nothing to carry.
M.SYNCHRONOUS = words [[ walk ]]

-- luv's functions that take no callback.
M.NO_CALLBACK = words [[
  accept async_send available_parallelism backend_fd backend_timeout cancel
  chdir check_stop cpu_info cwd disable_stdio_inheritance exepath fileno
  fs_event_getpath fs_event_stop fs_poll_getpath fs_poll_stop fs_scandir_next
  get_constrained_memory get_free_memory get_process_title get_total_memory
  getgid getpid getrusage gettimeofday getuid guess_handle handle_get_type
  has_ref hrtime idle_stop if_indextoiid if_indextoname interface_addresses
  is_active is_closing is_readable is_writable kill loadavg loop_alive
  loop_close loop_configure loop_mode metrics_idle_time new_check
  new_fs_event new_fs_poll new_idle new_pipe new_poll new_prepare new_signal
  new_socket_poll new_tcp new_timer new_tty new_udp now os_environ
  os_get_passwd os_getenv os_gethostname os_getpid os_getppid os_getpriority
  os_homedir os_setenv os_setpriority os_tmpdir os_uname os_unsetenv pipe
  pipe_bind pipe_chmod pipe_getpeername pipe_getsockname pipe_open
  pipe_pending_count pipe_pending_instances pipe_pending_type poll_stop
  prepare_stop print_active_handles print_all_handles process_get_pid
  process_kill read_stop recv_buffer_size ref req_get_type
  resident_set_memory run send_buffer_size set_process_title setgid setuid
  signal_stop sleep socketpair stop stream_get_write_queue_size
  stream_set_blocking tcp_bind tcp_close_reset tcp_getpeername
  tcp_getsockname tcp_keepalive tcp_nodelay tcp_open
  tcp_simultaneous_accepts tcp_write_queue_size thread_equal thread_join
  thread_self timer_again timer_get_due_in timer_get_repeat timer_set_repeat
  timer_stop translate_sys_error try_write try_write2 tty_get_vterm_state
  tty_get_winsize tty_reset_mode tty_set_mode tty_set_vterm_state udp_bind
  udp_connect udp_get_send_queue_count udp_get_send_queue_size
  udp_getpeername udp_getsockname udp_open udp_recv_stop udp_set_broadcast
  udp_set_membership udp_set_multicast_interface udp_set_multicast_loop
  udp_set_multicast_ttl udp_set_source_membership udp_set_ttl udp_try_send
  unref update_time uptime version version_string
]]

local capture = core.capture

-- Calls f(...) in the context (and task) current now, wherever it is
-- called from later: the capture every wrapper makes.
M.capture = capture

-- wrapper -> original, weak: recognises our own wrappers (never twice).
local originals = setmetatable({}, {__mode = "k"})

-- The wrapper (C, lua_tasks.c): each function argument that is not a
-- capture already, and each callable table, becomes a capture.
local function make_wrapper(orig)
  local w = core.wrap(orig)
  originals[w] = orig
  return w
end

-- ---- luv's work ----
-- The chunk luv runs on the work state instead of the work function: it
-- hands back the queue's number ahead of the function's results, so the
-- after-callback finds that queue's capture. The function is loaded once
-- per work state.
local WORK_SRC = [[
local id, code = ...
local loaded = rawget(_G, "__uvwool_work_fns")
if loaded == nil then
  loaded = {}
  rawset(_G, "__uvwool_work_fns", loaded)
end
local fn = loaded[code]
if fn == nil then
  fn = assert((loadstring or load)(code))
  loaded[code] = fn
end
return id, fn(select(3, ...))
]]

-- luv work ctx -> {code, after, pending = {[queue number] = capture}, seq}
local works = setmetatable({}, {__mode = "k"})

local function wrap_new_work(raw_new_work)
  return function(work, after, ...)
    if type(work) ~= "function" and type(work) ~= "string" then
      error("bad argument #1 to 'new_work' (function or string expected, got " .. type(work) .. ")", 2)
    end
    if type(after) ~= "function" then
      error("bad argument #2 to 'new_work' (function expected, got " .. type(after) .. ")", 2)
    end
    local st = {code = type(work) == "function" and string.dump(work) or work, after = after, pending = {}, seq = 0}
    local ctx = raw_new_work(WORK_SRC, function(id, ...)
      local cb = id ~= nil and st.pending[id]
      if not cb then return end -- the work raised: luv reported it, no results came
      st.pending[id] = nil
      return cb(...)
    end, ...)
    works[ctx] = st
    return ctx
  end
end

local pack = table.pack or function(...) return {n = select("#", ...), ...} end
local unpack = table.unpack or unpack

local function wrap_queue_work(raw_queue_work)
  return function(ctx, ...)
    local st = works[ctx]
    if st == nil then return raw_queue_work(ctx, ...) end -- made before install
    st.seq = st.seq + 1
    local id = st.seq
    st.pending[id] = capture(st.after)
    local r = pack(pcall(raw_queue_work, ctx, id, st.code, ...))
    if not r[1] or not r[2] then st.pending[id] = nil end
    if not r[1] then error(r[2], 2) end
    return unpack(r, 2, r.n)
  end
end

-- True when f is a wrapper made here.
function M.is_wrapper(f) return originals[f] ~= nil end
-- The luv function a wrapper stands for (f itself if f is none).
function M.original(f) return originals[f] or f end
-- A key equal for every function object of one C function (LuaJIT pushes
-- a new object each time; the handle methods are such copies).
M.function_key = function(f) return core.cfunction_key(f) or f end

-- True when uvwool's LD_PRELOAD object interposes libuv in this process:
-- it captures every registration already, so install changes nothing.
M.preload = core.interposed()

-- Patch the luv module table `uv` and the handle methods in the registry.
-- Idempotent; does nothing under the preload mode. Returns uv.
function M.install(uv)
  if M.preload then return uv end
  local wrapped = {} -- C function key of the original -> wrapper
  for name in pairs(M.CALLBACK) do
    local f = uv[name]
    if type(f) == "function" and not originals[f] then
      local w = make_wrapper(f)
      wrapped[core.cfunction_key(f) or f] = w
      uv[name] = w
    end
  end
  for name, wrap in pairs({new_work = wrap_new_work, queue_work = wrap_queue_work}) do
    local f = uv[name]
    if type(f) == "function" and not originals[f] then
      local w = wrap(f)
      originals[w] = f
      wrapped[core.cfunction_key(f) or f] = w
      uv[name] = w
    end
  end
  for key, mt in pairs(debug.getregistry()) do
    -- uv_timer, uv_tcp, ... and luv_work_ctx (its queue method)
    if type(key) == "string" and (key:match("^uv_") or key == "luv_work_ctx") and type(mt) == "table" and
        type(mt.__index) == "table" then
      for method, f in pairs(mt.__index) do
        local w = type(f) == "function" and wrapped[core.cfunction_key(f) or f]
        if w then mt.__index[method] = w end
      end
    end
  end
  return uv
end

local function find_luv()
  if type(vim) == "table" and type(vim.loop) == "table" then return vim.loop end
  return package.loaded.luv or require "luv"
end

M.uv = M.install(find_luv())
if package.loaded.luv and package.loaded.luv ~= M.uv then M.install(package.loaded.luv) end

return M
