-- Shared by the headless Neovim tests (loaded with dofile): this build's
-- module and layer on the search paths (UVWOOL_LUA_CPATH / UVWOOL_LUA_PATH),
-- a check that counts failures, and the exit that reports them.
package.cpath = os.getenv("UVWOOL_LUA_CPATH") .. ";" .. package.cpath
package.path = os.getenv("UVWOOL_LUA_PATH") .. ";" .. package.path

local M = {failures = 0}

function M.check(cond, what)
  if not cond then
    M.failures = M.failures + 1
    io.stderr:write("FAIL ", what, "\n")
  end
end

-- After the test body ran under pcall: counts its error, reports, exits.
function M.finish(name, ok, err)
  if not ok then
    M.failures = M.failures + 1
    io.stderr:write("ERROR ", tostring(err), "\n")
  end
  io.stderr:write(("%s: %d failure(s)\n"):format(name, M.failures))
  os.exit(M.failures == 0 and 0 or 1)
end

return M
