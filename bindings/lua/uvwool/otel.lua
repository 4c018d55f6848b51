-- uvwool.otel: OpenTelemetry for Lua on uvwool's context.
--
--   local otel = require "uvwool.otel"
--   require("opentelemetry.global").set_context_storage(otel.context_storage())
--   otel.baggage.inject(headers)              -- headers.baggage = "..."
--   otel.baggage.extract(headers):run(handler) -- handler sees the members
--
-- Context storage. opentelemetry-lua keeps its current context under a key
-- of a storage table it is given (ngx.ctx by default under OpenResty):
-- it reads storage[key] and writes storage[key] = value (older versions
-- call storage.get(key) and storage.set(key, value)). The storage made
-- here keeps each key in a uvwool variable, so OpenTelemetry's context
-- follows luv callbacks, spawned tasks and dispatch replies like any
-- variable, and a task's attach is not seen by another task.
--
-- opentelemetry-lua's attach pushes onto a stack table it mutates in
-- place, and a copied context (a luv callback's capture, a spawned task)
-- shares that table with the context it was copied from. So a read of a
-- plain table hands out a copy and binds it in the current context: the
-- push or pop that follows changes this context's stack only, and a
-- callback registered before a detach still sees the stack it was
-- registered under. A read costs a copy of the stack (a few entries).
--
-- The stored values are Lua tables: the variables propagate into forks
-- only (never to the wire or other Lua states; a trace crosses processes
-- as a traceparent header, by OpenTelemetry's own propagators).
local wool = require "uvwool"
local core = require "uvwool_core"

local M = {}

local NAMESPACE = "opentelemetry"
local EINVAL = -22

local function check(cond, message)
  if not cond then error(core.error_new("ValueError", EINVAL, "uvwool.otel: " .. message), 3) end
end

local vars = {}
local function var_for(key)
  local v = vars[key]
  if v == nil then
    v = wool.find_var(NAMESPACE, key) or wool.ContextVar(NAMESPACE, key, {propagate = {"fork"}})
    vars[key] = v
  end
  return v
end

local function shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- A plain table (the attach stack) is handed out as a copy bound in the
-- current context, so the caller's in-place changes stay in this context.
local function read(key)
  local var = var_for(key)
  local value = var:get(nil)
  if type(value) == "table" and getmetatable(value) == nil then
    value = shallow_copy(value)
    var:set(value)
  end
  return value
end

local function write(key, value)
  var_for(key):set(value)
end

-- context_storage(): a storage for opentelemetry-lua (global.set_context_storage).
function M.context_storage()
  local storage = {}
  -- The older interface: storage.get(key), storage.set(key, value).
  rawset(storage, "get", function(key)
    check(type(key) == "string", "storage keys are strings")
    return read(key)
  end)
  rawset(storage, "set", function(key, value)
    check(type(key) == "string", "storage keys are strings")
    write(key, value)
  end)
  return setmetatable(storage, {
    __index = function(_, key)
      check(type(key) == "string", "storage keys are strings")
      return read(key)
    end,
    __newindex = function(_, key, value)
      check(type(key) == "string", "storage keys are strings")
      write(key, value)
    end,
  })
end

-- ---- the W3C baggage header ----------------------------------------------------
-- uvwool renders the string-valued variables whose policy has "baggage"
-- (the default) as members "<namespace>.<name>=<value>" (percent-encoded),
-- plus the members of other systems the context received; a received
-- header binds the members that name declared variables. A carrier is a
-- table of headers, or anything an opentelemetry-lua text map setter or
-- getter (an object whose .set(carrier, key, value) / .get(carrier, key)
-- functions it calls) handles.

M.baggage = {}
local HEADER = "baggage"

-- header(): the current context's baggage header value ("" for none).
function M.baggage.header() return core.baggage_header() end

-- inject(carrier[, setter]): put the header into carrier (nothing when empty).
function M.baggage.inject(carrier, setter)
  check(carrier ~= nil, "inject(carrier[, setter]) takes a carrier")
  check(setter == nil or type(setter) == "table", "a setter is a table with a set function")
  local value = core.baggage_header()
  if value == "" then return end
  if setter then
    setter.set(carrier, HEADER, value)
  else
    carrier[HEADER] = value
  end
end

-- mount(header): bind the header's members in the current context.
function M.baggage.mount(header)
  check(type(header) == "string", "mount(header) takes the header's value")
  core.baggage_mount(header)
end

-- extract(carrier[, getter]): a copy of the current context with the
-- carrier's header mounted (the current one is unchanged); ctx:run(fn).
function M.baggage.extract(carrier, getter)
  check(carrier ~= nil, "extract(carrier[, getter]) takes a carrier")
  check(getter == nil or type(getter) == "table", "a getter is a table with a get function")
  local header
  if getter then
    header = getter.get(carrier, HEADER)
  else
    header = carrier[HEADER]
  end
  local ctx = wool.copy_context()
  if type(header) == "string" and header ~= "" then ctx:run(core.baggage_mount, header) end
  return ctx
end

return M
