-- busted spec of require "uvwool": variables, tokens, contexts, errors and
-- values, on every Lua ABI the module is built for (CTest runs it with
-- lua5.4 and luajit, LUA_CPATH pointing at that ABI's uvwool_core).
local wool = require "uvwool"

local is54 = math.type ~= nil
local seq = 0
-- Variables live for the process: one fresh (ns, name) per use.
local function var(opts)
  seq = seq + 1
  return wool.ContextVar("spec.core", "v" .. seq, opts)
end

local function raises(fn, ...)
  local ok, err = pcall(fn, ...)
  assert.is_false(ok, "expected an error")
  return err
end

describe("values", function()
  it("keep value and type both ways", function()
    local v = var()
    for _, value in ipairs({"héllo\0world", "", 42, -7, 1.5, 2 ^ 60, true, false}) do
      v:set(value)
      assert.are.equal(value, v:get())
      assert.are.equal(type(value), type(v:get()))
    end
  end)

  it("keep integers and floats apart on 5.4", function()
    if not is54 then return pending("Lua 5.1/LuaJIT has one number type") end
    local v = var()
    v:set(7)
    assert.are.equal("integer", math.type(v:get()))
    v:set(7.0)
    assert.are.equal("float", math.type(v:get()))
    v:set(math.maxinteger)
    assert.are.equal(math.maxinteger, v:get())
  end)

  it("store tables, functions and coroutines by identity", function()
    local v = var()
    local t, f, co = {}, function() end, coroutine.create(function() end)
    for _, value in ipairs({t, f, co}) do
      v:set(value)
      assert.is_true(rawequal(value, v:get()))
    end
  end)

  it("release an opaque value once no context holds it", function()
    local v = var()
    local seen = setmetatable({}, {__mode = "v"})
    local ctx = wool.Context()
    ctx:run(function() v:set({}) seen[1] = v:get() end)
    collectgarbage(); collectgarbage()
    assert.is_table(seen[1], "released while the context still holds it")
    assert.is_table(ctx:run(v.get, v))
    ctx = nil
    for _ = 1, 4 do collectgarbage() end
    assert.is_nil(seen[1], "still alive after its context was collected")
  end)
end)

describe("ContextVar", function()
  it("get raises LookupError when unbound, fallback and default win", function()
    local v = var()
    local err = raises(v.get, v)
    assert.are.equal("LookupError", err.class)
    assert.are.equal("UVW_ELOOKUP", err.code)
    assert.are.equal("fb", v:get("fb"))
    assert.is_nil(v:get(nil))
    local d = var({default = 10})
    assert.are.equal(10, d:get())
    assert.are.equal("fb", d:get("fb"))
  end)

  it("set returns a token naming the variable and the old value", function()
    local v = var()
    local t1 = v:set("a")
    assert.are.equal(v, t1.var)
    assert.are.equal(wool.MISSING, t1.old_value)
    assert.are.equal("uvwool.MISSING", tostring(wool.MISSING))
    local t2 = v:set("b")
    assert.are.equal("a", t2.old_value)
    assert.is_false(t2.used)
    v:reset(t2)
    assert.is_true(t2.used)
    assert.are.equal("a", v:get())
    v:reset(t1)
    assert.are.equal("LookupError", raises(v.get, v).class)
  end)

  it("get returns each context's string when reads alternate between contexts", function()
    -- get remembers the last string it pushed, by value identity: equal
    -- bytes in another value, or another value in the same context, must
    -- never come back stale.
    local v = var()
    local t = v:set("outer")
    local inner = wool.copy_context()
    inner:run(function() v:set("inner") end)
    for _ = 1, 3 do
      assert.are.equal("outer", v:get())
      assert.are.equal("inner", inner:run(function() return v:get() end))
    end
    local t2 = v:set("outer") -- equal bytes, another value
    assert.are.equal("outer", v:get())
    v:set("\0bytes\255")
    assert.are.equal("\0bytes\255", v:get())
    v:set(42)
    assert.are.equal(42, v:get())
    v:reset(t2)
    v:reset(t)
  end)

  it("a used token is rejected and changes nothing", function()
    local v = var()
    v:set("a")
    local tok = v:set("b")
    v:reset(tok)
    v:set("c")
    local err = raises(v.reset, v, tok)
    assert.are.equal("RuntimeError", err.class)
    assert.are.equal("UVW_ETOKEN_USED", err.code)
    assert.are.equal("c", v:get())
  end)

  it("a token of another variable, or no token, is rejected", function()
    local v, w = var(), var()
    w:set("kept")
    local tok = v:set(1)
    local err = raises(w.reset, w, tok)
    assert.are.equal("ValueError", err.class)
    assert.are.equal("UVW_ETOKEN_VAR", err.code)
    for _, bad in ipairs({"token", 1, {}, {_tok = 1}}) do
      err = raises(w.reset, w, bad)
      assert.are.equal("ValueError", err.class)
      assert.are.equal("UVW_EINVAL", err.code)
    end
    assert.are.equal("kept", w:get())
    assert.are.equal(1, v:get())
  end)

  it("wrong argument types raise ValueError", function()
    for _, args in ipairs({{1, "x"}, {"ns", nil}, {"ns", "x", "opts"}}) do
      local err = raises(wool.ContextVar, args[1], args[2], args[3])
      assert.are.equal("ValueError", err.class)
      assert.matches("ContextVar", err.message)
    end
    local v = var()
    assert.are.equal("ValueError", raises(v.get, "not a var").class)
    assert.are.equal("ValueError", raises(v.get, var()).class) -- another variable's object
    assert.are.equal("ValueError", raises(v.get).class)
    assert.are.equal("ValueError", raises(v.set, "not a var", 1).class)
    assert.are.equal("ValueError", raises(v.reset, "not a var", v:set(1)).class)
    assert.are.equal(1, v:get())
    assert.are.equal("ValueError", raises(v.with, v, 1, "not a function").class)
  end)

  it("declaring (ns, name) twice raises ContextVarCollision with fields", function()
    wool.ContextVar("spec.core", "twice")
    local err = raises(wool.ContextVar, "spec.core", "twice")
    assert.are.equal("ContextVarCollision", err.class)
    assert.are.equal("UVW_ECOLLISION", err.code)
    assert.are.equal("spec.core", err.fields.namespace)
    assert.are.equal("twice", err.fields.name)
  end)

  it("with binds for the scope, returns fn's results, resets on error", function()
    local v = var()
    v:set("outer")
    local a, b = v:with("inner", function(x) return v:get(), x end, "arg")
    assert.are.equal("inner", a)
    assert.are.equal("arg", b)
    assert.are.equal("outer", v:get())
    local err = raises(v.with, v, "inner", function() error("boom") end)
    assert.matches("boom", tostring(err))
    assert.are.equal("outer", v:get())
  end)
end)

describe("contexts", function()
  it("run returns fn's results and isolates writes", function()
    local v = var()
    v:set(1)
    local ctx = wool.copy_context()
    local a, b, c = ctx:run(function(x, y) v:set(2) return x + y, "second", nil end, 40, 2)
    assert.are.equal(42, a)
    assert.are.equal("second", b)
    assert.is_nil(c)
    assert.are.equal(1, v:get())
    assert.are.equal(2, ctx:run(v.get, v))
  end)

  it("run restores the context when fn raises, and refuses re-entry", function()
    local v = var()
    v:set("outer")
    local ctx = wool.copy_context()
    local err = raises(ctx.run, ctx, function() v:set("inner") error({mine = true}) end)
    assert.is_true(err.mine)
    assert.are.equal("outer", v:get())
    err = raises(ctx.run, ctx, function() return ctx:run(v.get, v) end)
    assert.are.equal("UVW_EENTERED", err.code)
    assert.are.equal("ValueError", raises(ctx.run, ctx, "not a function").class)
    assert.are.equal("outer", v:get())
  end)

  it("chain_id is nil while unarmed, stable across copies, new per context", function()
    local v = var()
    local ctx = wool.Context()
    assert.is_nil(ctx:run(wool.chain_id))
    local id = ctx:run(function() v:set(1) return wool.chain_id() end)
    assert.matches("^%x+$", id)
    assert.are.equal(32, #id)
    local copy = ctx:run(wool.copy_context)
    assert.are.equal(id, copy:run(wool.chain_id))
    local other = wool.Context():run(function() v:set(1) return wool.chain_id() end)
    assert.are_not.equal(id, other)
  end)
end)

describe("loading twice", function()
  it("keeps this state's values, MISSING and tasks", function()
    local v = var()
    local t = {}
    v:set(t)
    local missing = wool.MISSING
    package.loaded.uvwool_core, package.loaded.uvwool = nil, nil
    local again = require "uvwool"
    assert.are_not.equal(wool, again)
    assert.is_true(rawequal(t, v:get()))
    assert.are.equal(missing, again.MISSING)
    local id
    again.spawn(function() id = again.task_id() end)
    assert.is_number(id)
  end)
end)

describe("errors", function()
  it("are tables of the one error tree", function()
    local u = var()
    local err = raises(u.get, u)
    assert.is_true(err:is_a("LookupError"))
    assert.is_true(err:is_a("WoolError"))
    assert.is_false(err:is_a("ChainContention"))
    assert.is_false(err:is_a("NoSuchClass"))
    assert.is_true(wool.is_error(err, "WoolError"))
    assert.is_false(wool.is_error("LookupError", "LookupError"))
    assert.is_false(wool.is_error({class = "LookupError"}, "LookupError"))
    assert.matches("^LookupError: .*%(UVW_ELOOKUP%)$", tostring(err))
    assert.is_true(math.floor(err.errno) == err.errno and err.errno < 0)
    local ser = wool.Context() -- the tree's inner node, through its name
    assert.is_not_nil(ser)
  end)
end)
