-- LuaRocks rock of uvwool's Lua binding: `luarocks make` in a clone builds
-- the C module with CMake (SWIG, libuv and protobuf-c from the system, no
-- download) for the Lua luarocks targets (--lua-version 5.4, or 5.1 for
-- LuaJIT) and installs require "uvwool", "uvwool.luv", "uvwool.dispatch",
-- "uvwool.worker" and "uvwool.otel".
rockspec_format = "3.0"
package = "uvwool"
version = "0.1.0-1"
source = {
  url = "git+file://.",
}
description = {
  summary = "Python contextvars semantics for Lua on libuv (luv, Neovim)",
  detailed = [[
Context variables, single-use tokens, copy_context/run, coroutines as tasks
and context propagation through every luv callback registration.]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
}
build = {
  type = "command",
  build_command = [[cmake -S . -B build/luarocks -DCMAKE_BUILD_TYPE=Release -DUVWOOL_BUILD_TESTS=OFF ]]
    .. [[-DUVWOOL_LUA_ROCK_INCDIR="$(LUA_INCDIR)" -DUVWOOL_LUA_ROCK_LIBDIR="$(LIBDIR)" -DUVWOOL_LUA_ROCK_LUADIR="$(LUADIR)" ]]
    .. [[&& cmake --build build/luarocks -j2 --target uvwool_rock]],
  install_command = [[cmake --install build/luarocks --component lua_rock]],
}
