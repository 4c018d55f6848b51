-- busted spec of coroutines as tasks: uvwool.spawn / uvwool.wrap and the
-- C replacement of coroutine.resume.
local wool = require "uvwool"
local uv = require "luv"

local seq = 0
local function var(opts)
  seq = seq + 1
  return wool.ContextVar("spec.task", "v" .. seq, opts)
end

describe("spawn", function()
  it("runs fn on a fork: inherited values, own writes, own task", function()
    local v = var()
    v:set("parent")
    local seen, id
    wool.spawn(function(x)
      seen = v:get() .. x
      id = wool.task_id()
      v:set("child")
    end, "+arg")
    assert.are.equal("parent+arg", seen)
    assert.is_number(id)
    assert.is_nil(wool.task_id())
    assert.are.equal("parent", v:get())
  end)

  it("gives an armed chain a new id", function()
    local v = var()
    v:set(1)
    local parent = wool.chain_id()
    local child
    wool.spawn(function() v:get() child = wool.chain_id() end)
    assert.matches("^%x+$", child)
    assert.are_not.equal(parent, child)
  end)

  it("every resume runs in the task's context and restores the resumer's", function()
    local v = var()
    v:set("main")
    local log = {}
    local co = wool.spawn(function()
      v:set("task")
      while true do
        log[#log + 1] = v:get()
        coroutine.yield()
      end
    end)
    v:set("main2")
    assert.is_true(coroutine.resume(co))
    assert.are.equal("main2", v:get())
    wool.copy_context():run(function()
      v:set("elsewhere")
      coroutine.resume(co)
      assert.are.equal("elsewhere", v:get())
    end)
    assert.same({"task", "task", "task"}, log)
  end)

  it("a resume from a luv callback runs in the task's context", function()
    local v = var()
    v:set("main")
    local got, after
    local co = wool.spawn(function()
      v:set("task")
      coroutine.yield()
      got = v:get()
    end)
    local t = uv.new_timer()
    t:start(1, 0, function()
      coroutine.resume(co)
      after = v:get("unbound in callback")
      t:close()
    end)
    uv.run()
    assert.are.equal("task", got)
    assert.are.equal("main", after) -- a plain luv callback runs in the loop's context
    assert.are.equal("dead", coroutine.status(co))
  end)

  it("nested resumes unwind innermost first", function()
    local v = var()
    local inner = wool.spawn(function()
      v:set("B")
      coroutine.yield()
      return v:get()
    end)
    local outer_saw
    wool.spawn(function()
      v:set("A")
      local _, r = coroutine.resume(inner)
      outer_saw = {r, v:get()}
    end)
    assert.same({"B", "A"}, outer_saw)
  end)

  it("an error before the first yield propagates from spawn", function()
    local err = select(2, pcall(wool.spawn, function() error("early") end))
    assert.matches("early", tostring(err))
    assert.are.equal("ValueError", select(2, pcall(wool.spawn, "no function")).class)
  end)
end)

-- Runs fn(...) inside a new task (another live task); returns pcall's results.
local function from_other_task(fn, ...)
  local r
  local args = {...}
  wool.spawn(function() r = {pcall(fn, (table.unpack or unpack)(args))} end)
  return (table.unpack or unpack)(r)
end

describe("the chain guard", function()
  it("an armed context touched from another live task raises ChainContention task", function()
    local v = var()
    v:set("main")
    local ctx
    local co = wool.spawn(function()
      v:set("task")
      ctx = wool.copy_context()
      coroutine.yield()
    end)
    assert.are.equal("task", ctx:run(v.get, v)) -- plain code (no task) may read it
    local ok, err = from_other_task(ctx.run, ctx, v.get, v)
    assert.is_false(ok)
    assert.are.equal("ChainContention", err.class)
    assert.is_true(err:is_a("WoolError"))
    assert.are.equal("task", err.fields.kind)
    assert.are.equal(tostring(wool.task_id(co)), err.fields.owner_task)
    assert.are.equal("main", v:get())
    coroutine.resume(co) -- ends the task: its chain is free
    assert.same({true, "task"}, {from_other_task(ctx.run, ctx, v.get, v)})
  end)

  it("a task that raised is finished", function()
    local v = var()
    local ctx
    local co = wool.spawn(function()
      v:set("task")
      ctx = wool.copy_context()
      coroutine.yield()
      error("late")
    end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("late", err)
    assert.same({true, "task"}, {from_other_task(ctx.run, ctx, v.get, v)})
  end)

  it("a collected task coroutine is finished", function()
    local v = var()
    local ctx
    wool.spawn(function()
      v:set("task")
      ctx = wool.copy_context()
      coroutine.yield()
    end)
    assert.are.equal("ChainContention", select(2, from_other_task(ctx.run, ctx, v.get, v)).class)
    for _ = 1, 4 do collectgarbage() end
    assert.same({true, "task"}, {from_other_task(ctx.run, ctx, v.get, v)})
  end)
end)

describe("wrap", function()
  it("forks at wrap and resumes in the task at each call", function()
    local v = var()
    v:set("at wrap")
    local f = wool.wrap(function(a)
      local b = coroutine.yield(v:get() .. a)
      v:set("x")
      return v:get() .. b
    end)
    v:set("at call")
    assert.are.equal("at wrap1", f(1))
    assert.are.equal("x2", f(2))
    assert.are.equal("at call", v:get())
    assert.matches("dead", select(2, pcall(f)))
  end)
end)

describe("plain coroutines", function()
  it("resume as before", function()
    local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
    assert.same({true, 2}, {coroutine.resume(co, 1)})
    assert.same({true, 10}, {coroutine.resume(co, 5)})
    assert.same({false, "cannot resume dead coroutine"}, {coroutine.resume(co)})
    assert.is_false(pcall(coroutine.resume, "no coroutine"))
  end)

  it("keep every result, error value and status message", function()
    local co = coroutine.create(function(...) coroutine.yield(...) return nil, false, nil end)
    assert.same({n = 5, true, 1, nil, "x", nil}, table.pack and table.pack(coroutine.resume(co, 1, nil, "x", nil))
      or {n = select("#", coroutine.resume(co, 1, nil, "x", nil)), coroutine.resume(coroutine.create(function(...)
        return ... end), 1, nil, "x", nil)})
    local mine = {}
    local bad = coroutine.create(function() error(mine) end)
    local ok, err = coroutine.resume(bad)
    assert.is_false(ok)
    assert.are.equal(mine, err)
    assert.same({false, "cannot resume dead coroutine"}, {coroutine.resume(bad)})
    local self_msg, normal_msg
    local outer
    outer = coroutine.create(function()
      self_msg = select(2, coroutine.resume(outer))
      local inner = coroutine.create(function() normal_msg = select(2, coroutine.resume(outer)) end)
      coroutine.resume(inner)
    end)
    assert.is_true(coroutine.resume(outer))
    assert.are.equal("cannot resume non-suspended coroutine", self_msg)
    assert.are.equal("cannot resume non-suspended coroutine", normal_msg)
  end)

  it("a task resuming itself is refused and keeps running in its context", function()
    local v = var()
    local msg, after
    wool.spawn(function()
      v:set("task")
      msg = select(2, coroutine.resume(coroutine.running()))
      after = v:get()
    end)
    assert.are.equal("cannot resume non-suspended coroutine", msg)
    assert.are.equal("task", after)
  end)
end)
