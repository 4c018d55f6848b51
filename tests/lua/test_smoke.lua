-- Lua smoke test of the SWIG bindings (bindings/uvwool.i + bindings/lua/uvwool.lua).
-- Run by CTest with LUA_CPATH/LUA_PATH pointing at the built module and the layer.
local wool = require "uvwool"

local passed, failed = 0, 0

-- Runs one named case; any error inside (a failed expect or a stray uvwool
-- error) fails that case only, so one run reports every failure.
local function case(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
  else
    failed = failed + 1
    print(("FAIL %s: %s"):format(name, tostring(err)))
  end
end

local function expect(cond, what)
  if not cond then error(what, 2) end
end

local function expect_eq(got, want, what)
  if got ~= want or math.type(got) ~= math.type(want) then
    error(("%s: got %s (%s), want %s (%s)"):format(what, tostring(got), math.type(got) or type(got),
      tostring(want), math.type(want) or type(want)), 2)
  end
end

-- Calls fn(...), which must raise; returns the error object.
local function raises(fn, ...)
  local ok, err = pcall(fn, ...)
  expect(not ok, "expected an error, got none")
  return err
end

-- One variable per case: variables live for the process and names are unique.
local function var(name, opts) return wool.ContextVar("smoke", name, opts) end

case("round trip keeps value and type", function()
  local v = var("roundtrip")
  for _, value in ipairs({"héllo\0world", 42, -(2 ^ 62 | 0) - 7, 1.5, 2.0, true, false}) do
    v:set(value)
    expect_eq(v:get(), value, "set/get of " .. tostring(value))
  end
  v:set(7)
  expect(math.type(v:get()) == "integer", "integer came back as " .. tostring(math.type(v:get())))
  v:set(7.0)
  expect(math.type(v:get()) == "float", "float came back as " .. tostring(math.type(v:get())))
end)

case("nil is a value, missing is LookupError", function()
  local v = var("nil_vs_missing")
  expect(raises(v.get, v).kind == "LookupError", "unbound get did not raise LookupError")
  local tok = v:set(nil)
  local ok, got = pcall(v.get, v)
  expect(ok and got == nil, "get after set(nil) did not return nil: " .. tostring(got))
  v:reset(tok)
  expect(raises(v.get, v).kind == "LookupError", "reset to unbound did not make get raise")
end)

case("unbound get raises LookupError; fallback wins", function()
  local v = var("unbound")
  local err = raises(v.get, v)
  expect(type(err) == "table", "error is not a table: " .. tostring(err))
  expect(err.kind == "LookupError", "kind is " .. tostring(err.kind))
  expect(err.code == "UVW_ELOOKUP", "code is " .. tostring(err.code))
  expect(math.type(err.errno) == "integer" and err.errno < 0, "errno is " .. tostring(err.errno))
  expect(type(err.message) == "string" and err.message:find("(smoke, unbound)", 1, true),
    "message does not name the variable: " .. tostring(err.message))
  expect(tostring(err):find("^LookupError: "), "tostring is " .. tostring(err))
  expect(wool.is_error(err, "LookupError") and wool.is_error(err, "WoolError"), "is_error misses the class tree")
  expect(not wool.is_error(err, "ValueError") and not wool.is_error("LookupError", "LookupError"),
    "is_error matches too much")
  expect_eq(v:get("fb"), "fb", "get with fallback")
  expect_eq(v:get(0), 0, "get with integer fallback")
  local ok, got = pcall(v.get, v, nil)
  expect(ok and got == nil, "explicit nil fallback did not return nil")
end)

case("default value; fallback beats default", function()
  local v = var("defaulted", {default = 10})
  expect_eq(v:get(), 10, "default")
  expect_eq(v:get("fb"), "fb", "fallback over default")
  v:set(11)
  expect_eq(v:get("fb"), 11, "bound value over fallback")
end)

case("reset restores; a used token is rejected", function()
  local v = var("reset")
  v:set("a")
  local tok = v:set("b")
  expect_eq(v:get(), "b", "after set")
  v:reset(tok)
  expect_eq(v:get(), "a", "after reset")
  local err = raises(v.reset, v, tok)
  expect(err.code == "UVW_ETOKEN_USED", "second reset code is " .. tostring(err.code))
  expect(err.kind == "RuntimeError", "second reset kind is " .. tostring(err.kind))
  expect_eq(v:get(), "a", "value after rejected reset")
end)

case("a token of another variable is rejected", function()
  local v, w = var("token_owner"), var("token_other")
  local tok = v:set(1)
  local err = raises(w.reset, w, tok)
  expect(err.code == "UVW_ETOKEN_VAR" and err.kind == "ValueError", "got " .. tostring(err))
end)

case("copy_context + run isolates writes", function()
  local v = var("isolated")
  v:set(1)
  local ctx = wool.copy_context()
  local a, b = ctx:run(function(x, y)
    expect_eq(v:get(), 1, "value seen inside run")
    v:set(2)
    expect_eq(v:get(), 2, "write inside run")
    return x + y, "second"
  end, 40, 2)
  expect_eq(a, 42, "first result of run")
  expect_eq(b, "second", "second result of run")
  expect_eq(v:get(), 1, "value outside after run")
  expect_eq(ctx:run(v.get, v), 2, "the context kept its write")
  v:set(3)
  expect_eq(ctx:run(v.get, v), 2, "outside writes do not reach the copy")
end)

case("run: errors propagate, the context is left, re-entry is refused", function()
  local v = var("run_errors")
  v:set("outer")
  local ctx = wool.copy_context()
  local err = raises(ctx.run, ctx, function()
    v:set("inner")
    error("boom")
  end)
  expect(tostring(err):find("boom", 1, true), "error was " .. tostring(err))
  expect_eq(v:get(), "outer", "context restored after an error")
  err = raises(ctx.run, ctx, function() return ctx:run(v.get, v) end)
  expect(err.kind == "RuntimeError" and err.code == "UVW_EENTERED", "nested run gave " .. tostring(err))
  expect(raises(wool.Context().run, wool.Context(), v.get, v).kind == "LookupError",
    "an empty context has a binding")
end)

case("declaring (ns, name) twice raises ContextVarCollision", function()
  var("twice")
  local err = raises(var, "twice")
  expect(err.kind == "ContextVarCollision", "kind is " .. tostring(err.kind))
  expect(err.code == "UVW_ECOLLISION", "code is " .. tostring(err.code))
  expect(var("twice_other") ~= nil, "a different name collides")
end)

case("a non-token is refused without a change", function()
  local v = var("unconvertible")
  v:set("kept")
  local err = raises(v.reset, v, {})
  expect(err.kind == "ValueError" and err.code == "UVW_EINVAL", "error was " .. tostring(err))
  expect_eq(v:get(), "kept", "value after a refused reset")
end)

case("tokens and contexts are collected", function()
  local v = var("collected")
  for i = 1, 1000 do
    v:set(i)
    wool.copy_context()
  end
  collectgarbage()
  collectgarbage()
  expect_eq(v:get(), 1000, "value after collection")
end)

print(("lua smoke: %d passed, %d failed"):format(passed, failed))
-- close = true: closing the state runs every __gc (tokens, contexts) under the sanitizers.
os.exit(failed == 0 and 0 or 1, true)
