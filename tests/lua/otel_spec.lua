-- busted spec of require "uvwool.otel": opentelemetry-lua's context riding
-- in uvwool variables, and the W3C baggage carrier.
--
-- opentelemetry-lua is not installable here: `otel_stand_in` below is a
-- minimal stand-in that uses its context storage interface the way its
-- context module does (global.set_context_storage / get_context_storage;
-- attach pushes onto storage[key], a stack table mutated in place, and
-- returns the stack's length as token; detach pops when the token
-- matches; current reads the top), plus the older get/set form.
local wool = require "uvwool"
local otel = require "uvwool.otel"
local uv = require "luv"
require "uvwool.luv"

local function otel_stand_in()
  local global = {context_storage = nil}
  function global.set_context_storage(s) global.context_storage = s end
  function global.get_context_storage() return global.context_storage end

  local key = "__opentelemetry_context__"
  local context = {}
  context.__index = context
  function context.new(entries) return setmetatable({entries = entries or {}}, context) end
  function context:get(k) return self.entries[k] end
  function context:set(k, v)
    local e = {}
    for a, b in pairs(self.entries) do e[a] = b end
    e[k] = v
    return context.new(e)
  end
  function context:attach()
    local storage = global.get_context_storage()
    if storage[key] then
      table.insert(storage[key], self)
    else
      storage[key] = {self}
    end
    return #storage[key]
  end
  function context:detach(token)
    local storage = global.get_context_storage()
    if #storage[key] == token then
      table.remove(storage[key])
      return true
    end
    return false, "token does not match"
  end
  function context.current()
    local stack = global.get_context_storage()[key]
    if stack then return stack[#stack] end
    return context.new()
  end
  return global, context
end

local function run_until(cond)
  local deadline = uv.now() + 5000
  while not cond() do
    assert(uv.now() < deadline, "timed out")
    uv.run("once")
  end
end

describe("uvwool.otel context storage", function()
  local global, context = otel_stand_in()
  global.set_context_storage(otel.context_storage())
  -- The current span, nil when nothing is attached (an emptied stack has no top).
  local function span()
    local c = context.current()
    return c and c:get("span")
  end

  it("attaches, reads and detaches like a plain storage", function()
    local ctx = context.new():set("span", "root")
    local token = ctx:attach()
    assert.are.equal(1, token)
    assert.are.equal("root", span())
    local inner = context.current():set("span", "child")
    local t2 = inner:attach()
    assert.are.equal("child", span())
    assert.is_true(inner:detach(t2))
    assert.is_false((ctx:detach(t2))) -- a stale token is refused
    assert.is_true(ctx:detach(token))
    assert.is_nil(span())
  end)

  it("keeps each task's attach its own, also across yields", function()
    local base = context.new():set("span", "base")
    local base_token = base:attach()
    local seen = {}
    local function task(name)
      return wool.spawn(function()
        local tok = context.current():set("span", name):attach()
        coroutine.yield()
        seen[name] = span()
        context.current():detach(tok)
        seen[name .. ".after"] = span()
      end)
    end
    local a, b = task("a"), task("b")
    -- both are suspended after attaching: the caller's stack is untouched
    assert.are.equal("base", span())
    coroutine.resume(a)
    coroutine.resume(b)
    assert.same({a = "a", b = "b", ["a.after"] = "base", ["b.after"] = "base"}, seen)
    assert.are.equal("base", span())
    assert.is_true(base:detach(base_token))
  end)

  it("follows luv callbacks registered under an attached context", function()
    local tok = context.new():set("span", "timer-parent"):attach()
    local got
    local t = uv.new_timer()
    t:start(1, 0, function() got = span() end)
    context.current():detach(tok)
    run_until(function() return got ~= nil end)
    t:close()
    assert.are.equal("timer-parent", got)
    assert.is_nil(span())
  end)

  it("serves the older get/set interface", function()
    local storage = otel.context_storage()
    local task_saw
    storage.set("opentelemetry-context", "old-style")
    wool.spawn(function() task_saw = storage.get("opentelemetry-context") end)
    assert.are.equal("old-style", task_saw)
    assert.are.equal("old-style", storage["opentelemetry-context"])
    storage.set("opentelemetry-context", nil)
    assert.is_nil(storage.get("opentelemetry-context"))
  end)

  it("refuses keys that are not strings", function()
    local storage = otel.context_storage()
    local ok, err = pcall(function() return storage[42] end)
    assert.is_false(ok)
    assert.are.equal("ValueError", err.class)
    ok, err = pcall(storage.set, {}, 1)
    assert.is_false(ok)
    assert.are.equal("ValueError", err.class)
  end)
end)

describe("uvwool.otel baggage carrier", function()
  local tenant = wool.ContextVar("app", "tenant")
  local user = wool.ContextVar("app", "user")
  local secret = wool.ContextVar("app", "secret", {propagate = {"fork", "thread", "wire"}})

  it("injects the string variables as a W3C baggage header", function()
    local headers = {}
    -- in an empty context: other specs leave bindings in the main one
    wool.Context():run(function()
      tenant:set("acme")
      user:set("ann")
      secret:set("s3cret")
      otel.baggage.inject(headers)
    end)
    assert.are.equal("app.tenant=acme,app.user=ann", headers.baggage)
  end)

  it("injects nothing for an empty context", function()
    local headers, header = {}, nil
    wool.Context():run(function()
      otel.baggage.inject(headers)
      header = otel.baggage.header()
    end)
    assert.is_nil(headers.baggage)
    assert.are.equal("", header)
  end)

  it("extracts a header into a context to run in, leaving the current one alone", function()
    local ctx = otel.baggage.extract({baggage = "app.tenant=globex,other.system=kept;p=1,app.secret=no"})
    local got = {ctx:run(function() return tenant:get(), secret:get("-"), otel.baggage.header() end)}
    assert.are.equal("globex", got[1])
    assert.are.equal("-", got[2]) -- a variable without "baggage" is never bound from the header
    assert.matches("app.tenant=globex", got[3], 1, true)
    assert.matches("other.system=kept;p=1", got[3], 1, true)
    assert.are.equal("-", tenant:get("-"))
  end)

  it("goes through opentelemetry-lua style getters and setters", function()
    local calls = {}
    local setter = {set = function(carrier, k, v) calls[#calls + 1] = k; carrier.h[k] = v end}
    local getter = {get = function(carrier, k) return carrier.h[k] end}
    local carrier = {h = {}}
    tenant:with("initech", function() otel.baggage.inject(carrier, setter) end)
    assert.same({"baggage"}, calls)
    local ctx = otel.baggage.extract(carrier, getter)
    assert.are.equal("initech", ctx:run(tenant.get, tenant))
  end)

  it("rejects bad input with clear errors", function()
    local ok, err = pcall(otel.baggage.mount, 42)
    assert.is_false(ok)
    assert.are.equal("ValueError", err.class)
    ok, err = pcall(otel.baggage.inject, nil)
    assert.is_false(ok)
    assert.are.equal("ValueError", err.class)
    ok, err = pcall(wool.ContextVar, "app", "bad", {propagate = {"everywhere"}})
    assert.is_false(ok)
    assert.matches("everywhere", err.message)
    assert.is_nil(wool.find_var("app", "bad")) -- nothing was declared
  end)
end)
