-- The Lua caller driver of the conformance matrix (tests/conformance/README.md):
--   lua5.4 lua_caller.lua ADDRESS SCENARIOS_FILE
-- Each scenario runs in a spawned task on a fresh context, ops in order;
-- a dispatch yields the task until its reply, whose changes are then the
-- task's: `expect var` reads there and the next step is made from there.
local uv = require "luv"
local wool = require "uvwool"
local dispatch = require "uvwool.dispatch"

local address, path = arg[1], arg[2]
assert(address and path, "usage: lua_caller.lua ADDRESS SCENARIOS_FILE")

-- ---- the file ---------------------------------------------------------------
local scenarios = {}
for line in io.lines(path) do
  line = line:gsub("#.*", "")
  local words = {}
  for w in line:gmatch("%S+") do words[#words + 1] = w end
  if words[1] == "scenario" then
    scenarios[#scenarios + 1] = {id = words[2], ops = {}}
  elseif #words > 0 then
    table.insert(scenarios[#scenarios].ops, words)
  end
end

local function unpercent(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local MISSING = setmetatable({}, {__tostring = function() return "missing" end})
local OPAQUE = setmetatable({}, {__tostring = function() return "opaque" end})

-- A value of the file's syntax; `missing` is MISSING.
local function parse(text)
  if text == "nil" then return nil end
  if text == "true" then return true end
  if text == "false" then return false end
  if text == "missing" then return MISSING end
  if text == "opaque" then return OPAQUE end
  if text == "chain" then return wool.chain_id() or "<unarmed>" end
  local kind, rest = text:match("^(%a):(.*)$")
  if kind == "i" then return math.tointeger(tonumber(rest)) end
  if kind == "f" then return tonumber(rest) + 0.0 end
  if kind == "s" then return unpercent(rest) end
  if kind == "x" then return (rest:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)) end
  error("bad value " .. text)
end

local function show(v)
  if v == nil then return "nil" end
  if v == MISSING or v == OPAQUE then return tostring(v) end
  if math.type(v) == "integer" then return "i:" .. v end
  if math.type(v) == "float" then return string.format("f:%.17g", v) end
  if type(v) == "string" then return "s:" .. v end
  return tostring(v)
end

-- Numbers compare by math.type and value. (Lua strings are bytes: a
-- scenario that expects bytes is a skip, since the kind is not visible.)
local function same(a, b)
  if type(a) == "number" and type(b) == "number" then return math.type(a) == math.type(b) and a == b end
  return a == b
end

local REMOTE_CLASS = {UVW_ECONTENTION = "ChainContention"}

local vars = {}
local function var_named(q)
  if not vars[q] then
    local ns, name = q:match("^([^.]+)%.(.+)$")
    vars[q] = wool.ContextVar(ns, name)
  end
  return vars[q]
end

local function status_of(err)
  if err == nil then return "ok" end
  local names = {UVW_EREMOTE = "remote", UVW_ENACK = "nack", UVW_ECANCELED = "cancelled", UVW_ECONNRESET = "connreset"}
  return type(err) == "table" and (names[err.code] or err.code) or tostring(err)
end

-- ---- one scenario -------------------------------------------------------------
local conn = dispatch.connect(address, {timeout = 5000})
local failures = 0

local function values_of(words, from)
  local t = {n = 0}
  for i = from, #words do
    t.n = t.n + 1
    local v = parse(words[i])
    if v == OPAQUE then v = {} end
    t[t.n] = v
  end
  return t
end

local function run_scenario(sc)
  local reply -- {err =, value =, done =}
  local stream
  for _, op in ipairs(sc.ops) do
    if op[1] == "expect" and ((op[3] or ""):match("^x:") or (op[4] or ""):match("^x:")) then
      return "skip", "Lua strings carry no kind: a Lua caller cannot tell bytes from a string"
    end
  end
  for i, op in ipairs(sc.ops) do
    local kind = op[1]
    if kind == "cancel" then
      -- made with the call above it
    elseif kind == "set" then
      local v = parse(op[3])
      if v == OPAQUE then v = {} end
      var_named(op[2]):set(v)
    elseif kind == "expect" then
      if not reply then return "not ok", op[2] .. ": no reply to check" end
      local what = op[2]
      if what == "status" then
        if status_of(reply.err) ~= op[3] then
          return "not ok", ("status: want %s, got %s (%s)"):format(op[3], status_of(reply.err), tostring(reply.err))
        end
      elseif what == "done" then
        if not reply.done then return "not ok", "done: not the last" end
      elseif what == "result" then
        local want = parse(op[3])
        if not same(want, reply.value) then
          return "not ok", ("result: want %s, got %s"):format(show(want), show(reply.value))
        end
      elseif what == "var" then
        local want, got = parse(op[4]), var_named(op[3]):get(MISSING)
        if not same(want, got) then
          return "not ok", ("var %s: want %s, got %s"):format(op[3], show(want), show(got))
        end
      elseif what:match("^error%.") then
        local e = reply.err
        if type(e) ~= "table" then return "not ok", what .. ": no error" end
        local want = unpercent(op[#op])
        local got
        if what == "error.message" then
          got = e.message
          if got and got:find(want, 1, true) then got = want end
        elseif what == "error.code" then
          -- A routine's error arrives with code UVW_EREMOTE and the class
          -- of the routine's error (docs/lua.md): the class stands for its code.
          got = e.code
          if got == "UVW_EREMOTE" and REMOTE_CLASS[want] == e.class then got = want end
        else
          got = e.fields and e.fields[op[3]]
        end
        if got ~= want then return "not ok", ("%s: want %s, got %s"):format(what, want, tostring(got)) end
      else
        return "not ok", "unknown expectation " .. what
      end
    else
      if reply and reply.err and kind ~= "call" then
        return "not ok", "status: want ok, got " .. status_of(reply.err)
      end
      local ok, value, done
      if kind == "call" and (sc.ops[i + 1] or {})[1] == "cancel" then
        local err, v = wool.await(function(cb)
          conn:dispatch_cb(op[2], values_of(op, 3), cb):cancel()
        end)
        ok, value, done = err == nil, err or v, true
      elseif kind == "call" then
        ok, value = pcall(conn.dispatch, conn, op[2], table.unpack(values_of(op, 3), 1, #op - 2))
        done = true
      elseif kind == "stream" then
        stream = conn:stream(op[2], table.unpack(values_of(op, 3), 1, #op - 2))
        ok = nil
      elseif not stream then
        return "not ok", kind .. ": no open stream"
      elseif kind == "next" then
        ok, value, done = pcall(stream.next, stream)
      elseif kind == "send" then
        ok, value, done = pcall(stream.send, stream, parse(op[2]))
      elseif kind == "throw" then
        ok, value, done = pcall(stream.throw, stream, unpercent(op[2]))
      end
      if ok ~= nil then
        reply = ok and {value = value, done = done} or {err = value}
      end
    end
  end
  if stream and not stream.ended then stream:close() end
  return "ok"
end

-- ---- the run ------------------------------------------------------------------
local function start(i)
  local sc = scenarios[i]
  if not sc then
    conn:close()
    return
  end
  wool.Context():run(function()
    wool.spawn(function()
      local ok, verdict, why = pcall(run_scenario, sc)
      if not ok then verdict, why = "not ok", "raised " .. tostring(verdict) end
      if verdict == "not ok" then failures = failures + 1 end
      io.write(verdict, " ", sc.id, why and (": " .. why) or "", "\n")
      io.stdout:flush()
      local t = uv.new_timer()
      t:start(0, 0, function()
        t:close()
        start(i + 1)
      end)
    end)
  end)
end

start(1)
uv.run()
os.exit(failures == 0 and 0 or 1)
