-- uvwool for Lua: a thin, idiomatic layer over the SWIG module uvwool_core.
--
--   local wool = require "uvwool"
--   local v = wool.ContextVar("app", "request_id", {default = "-"})
--   local tok = v:set("r-42"); v:get(); v:reset(tok)
--   wool.copy_context():run(function() ... end)
--
-- Failures raise a table {kind=, code=, errno=, message=, fields=}; kind is
-- the uvwool error class ("LookupError", "ContextVarCollision", ...).
local core = require "uvwool_core"

local M = {version = core.version_string()}

local ContextVar = {}
ContextVar.__index = ContextVar

-- Declare (ns, name). opts.default, when not nil, is the default value.
function M.ContextVar(ns, name, opts)
  local var = core.var_declare(ns, name, opts and opts.default)
  return setmetatable({_var = var}, ContextVar)
end

-- get() raises LookupError when unbound without default; get(fallback)
-- returns fallback instead (an explicit nil fallback included).
function ContextVar:get(...)
  if select("#", ...) == 0 then
    return core.get(self._var)
  end
  return core.get_or(self._var, (...))
end

-- Returns a single-use token for reset.
function ContextVar:set(value)
  return core.set(self._var, value)
end

function ContextVar:reset(token)
  core.reset(self._var, token)
end

function ContextVar:__tostring()
  return ("ContextVar(%s, %s)"):format(core.var_namespace(self._var), core.var_name(self._var))
end

local Context = {}
Context.__index = Context

local function wrap_context(ctx)
  return setmetatable({_ctx = ctx}, Context)
end

-- Calls fn(...) with this context current and returns fn's results.
function Context:run(fn, ...)
  return core.context_run(self._ctx, fn, ...)
end

function M.copy_context()
  return wrap_context(core.context_copy_current())
end

-- A new empty context, with no bindings.
function M.Context()
  return wrap_context(core.context_new())
end

-- True when err is a uvwool error of class `kind` or one of its subclasses
-- (kinds form a tree: is_error(e, "WoolError") holds for every error).
function M.is_error(err, kind)
  if type(err) ~= "table" or type(err.kind) ~= "string" then
    return false
  end
  return core.error_kind_is(core.error_kind_from_name(err.kind), core.error_kind_from_name(kind))
end

return M
