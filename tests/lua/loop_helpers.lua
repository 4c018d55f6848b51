-- Loop helpers shared by the dispatch and worker specs (loaded with
-- dofile from the spec's directory: busted's pattern does not pick it up).
local wool = require "uvwool"
local uv = require "luv"

local M = {}

-- Run the loop until cond() holds; fail after ms.
function M.run_until(cond, ms)
  local deadline = uv.now() + (ms or 10000)
  while not cond() do
    assert(uv.now() < deadline, "timed out waiting on the loop")
    local t = uv.new_timer()
    t:start(20, 0, function() end)
    uv.run("once")
    t:close()
  end
  uv.run("nowait")
end

-- Run fn as a spawned task; drive the loop until it finished. Returns
-- what fn returned (pcall's results).
function M.in_task(fn)
  local result
  wool.spawn(function() result = {pcall(fn)} end)
  M.run_until(function() return result ~= nil end)
  return (table.unpack or unpack)(result)
end

return M
