-- busted spec of uvwool.to_thread: work on luv's thread pool, in another
-- Lua state, gets the submitter's context as a detached fork.
local wool = require "uvwool"
local uv = require "luv"

local seq = 0
local function var()
  seq = seq + 1
  return wool.ContextVar("spec.thread", "v" .. seq), "v" .. seq
end

describe("to_thread", function()
  it("runs work in a detached fork of the context at queue; after_fn in the captured context", function()
    local v, vname = var()
    local n, nname = var()
    v:set("registered")
    n:set(21)
    local main_chain = wool.chain_id()
    local results = {}
    local w = wool.to_thread(function(ns, vn, nn, tag)
      local wool = require "uvwool"
      local v, n = wool.find_var(ns, vn), wool.find_var(ns, nn)
      local before = v:get()
      v:set("written by work " .. tag) -- the work's own context: never flows back
      local ntype = math.type and math.type(n:get()) or "number"
      return tag, before, ntype, n:get(), wool.chain_id()
    end, function(tag, before, ntype, nval, chain)
      results[tag] = {before, ntype, nval, chain ~= main_chain and #chain == 32, v:get()}
    end)
    for i = 1, 3 do
      v:set("queued " .. i)
      assert.is_true(w:queue("spec.thread", vname, nname, "t" .. i))
    end
    v:set("outside")
    uv.run()
    local want_type = math.type and "integer" or "number"
    for i = 1, 3 do
      assert.same({"queued " .. i, want_type, 21, true, "queued " .. i}, results["t" .. i])
    end
    assert.are.equal("outside", v:get())
    assert.are.equal(main_chain, wool.chain_id())
  end)

  it("work sees nothing of an unarmed context, and no Lua object crosses", function()
    local v, vname = var()
    local got
    local w = wool.to_thread(function(vn)
      local wool = require "uvwool"
      return wool.find_var("spec.thread", vn):get("unbound")
    end, function(r) got = r end)
    wool.Context():run(function() w:queue(vname) end)
    uv.run()
    assert.are.equal("unbound", got)
  end)

  it("new_thread runs its entry in a detached fork of the context", function()
    local v, vname = var()
    v:set("before thread")
    local path = ("%s/uvwool_thread_spec_%d"):format(os.getenv("TMPDIR") or "/tmp", uv.os_getpid())
    local th = wool.new_thread(function(vn, out)
      local wool = require "uvwool"
      local v = wool.find_var("spec.thread", vn)
      local seen = v:get()
      v:set("written by the thread")
      local f = io.open(out, "w")
      f:write(seen, "|", tostring(wool.chain_id()))
      f:close()
    end, vname, path)
    v:set("after start")
    assert.is_true(uv.thread_join(th))
    local f = assert(io.open(path))
    local seen, chain = f:read("*a"):match("^(.-)|(.*)$")
    f:close()
    os.remove(path)
    assert.are.equal("before thread", seen)
    assert.are.equal(32, #chain)
    assert.are_not.equal(wool.chain_id(), chain)
    assert.are.equal("after start", v:get())
    assert.are.equal("ValueError", select(2, pcall(wool.new_thread, "code")).class)
  end)

  it("find_var finds declared variables only; bad input raises ValueError", function()
    local v, vname = var()
    assert.are.equal(tostring(v), tostring(wool.find_var("spec.thread", vname)))
    assert.is_nil(wool.find_var("spec.thread", "never declared"))
    assert.are.equal("ValueError", select(2, pcall(wool.find_var, 1, 2)).class)
    assert.are.equal("ValueError", select(2, pcall(wool.to_thread, "code")).class)
    assert.are.equal("ValueError", select(2, pcall(wool.to_thread, function() end, 5)).class)
  end)
end)
