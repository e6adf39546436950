-- planfix_rest/params.lua: the spec's types and limits of one REST
-- operation's parameters, checked before anything is sent (the library) or
-- used to read text (the CLI, whose arguments are all text). Both read the
-- same generated table (planfix_rest/ops.lua), so each conversion is
-- decided in one place.
local core = require "planapi.core"

local M = {}

local config_error = require "planapi.config_error"

local function finite(v)
  return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
end

local function integral(v)
  return finite(v) and v % 1 == 0
end

-- A table with no keys but 1..n (or marked planapi.array) is an array; an
-- empty unmarked table fits both an array and an object.
local function array_shaped(t)
  if core.is_array(t) then return true end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

local function object_shaped(t)
  return not core.is_array(t) and (next(t) == nil or t[1] == nil)
end

-- Does v have OpenAPI type t? URLs are text, so a string parameter of the
-- path or the query also takes a whole number, written the same way
-- ("contact:12 OR 12", says the spec); the JSON body tells them apart.
local FITS = {
  string = function(v, in_url) return type(v) == "string" or (in_url and integral(v)) end,
  integer = integral,
  number = finite,
  boolean = function(v) return type(v) == "boolean" end,
  array = function(v) return type(v) == "table" and array_shaped(v) end,
  object = function(v) return type(v) == "table" and object_shaped(v) end,
}

local ARTICLE = { integer = "an integer", array = "an array", object = "an object" }

local function described(t)
  return ARTICLE[t] or ("a " .. t)
end

local function got(v, t)
  if type(v) == "number" and not finite(v) then return "a non-finite number" end
  if type(v) == "number" and t == "integer" then return "a non-integral number" end
  if type(v) == "table" then return array_shaped(v) and "an array" or "an object" end
  return described(type(v))
end

-- The value is never part of a message: it may be a secret (secretToken).
local function check_limits(op_id, name, v, limits)
  if limits.enum then
    for _, allowed in ipairs(limits.enum) do
      if v == allowed then return end
    end
    local listed = {}
    for i, allowed in ipairs(limits.enum) do listed[i] = tostring(allowed) end
    config_error(("parameter '%s' of %s must be one of %s"):format(name, op_id, table.concat(listed, ", ")), 0)
  end
  if limits.minimum and type(v) == "number" and v < limits.minimum then
    config_error(("parameter '%s' of %s must be at least %d"):format(name, op_id, limits.minimum), 0)
  end
  if limits.maximum and type(v) == "number" and v > limits.maximum then
    config_error(("parameter '%s' of %s must be at most %d"):format(name, op_id, limits.maximum), 0)
  end
  if limits.min_length and type(v) == "string" and #v < limits.min_length then
    config_error(("parameter '%s' of %s must be at least %d characters long"):format(name, op_id, limits.min_length), 0)
  end
  if limits.max_length and type(v) == "string" and #v > limits.max_length then
    config_error(("parameter '%s' of %s must be at most %d characters long"):format(name, op_id, limits.max_length), 0)
  end
end

--- check(op_id, op, name, v, t, in_url): raise a config error naming the
-- parameter and the expected type unless v fits the spec (its type, then
-- its enum, minimum, maximum and lengths). planapi.null fits a body
-- parameter of any type (it sends JSON null).
function M.check(op_id, op, name, v, t, in_url)
  if v == core.null and not in_url then return end
  local fits = FITS[t]
  if fits and not fits(v, in_url) then
    config_error(("parameter '%s' of %s must be %s, got %s"):format(name, op_id, described(t), got(v, t)), 0)
  end
  local limits = op.limits and op.limits[name]
  if limits then check_limits(op_id, name, v, limits) end
end

--- check_at_least_one(op_id, op, body): the body names one of the
-- properties the spec requires at least one of.
function M.check_at_least_one(op_id, op, body)
  if not op.at_least_one then return end
  for _, name in ipairs(op.at_least_one) do
    if type(body) == "table" and body[name] ~= nil then return end
  end
  config_error(("%s needs at least one of the parameters '%s'"):format(op_id,
    table.concat(op.at_least_one, "', '")), 0)
end

--- The spec's type of a parameter of op, or nil for a name it does not have.
function M.type_of(op, name)
  return op.path_types[name] or op.query[name] or (op.body_params and op.body_params[name])
end

local INTEGER_TEXT = "^%-?%d+$"

-- Text to the type; nil when the text cannot be one.
local FROM_TEXT = {
  integer = function(s) return s:match(INTEGER_TEXT) and tonumber(s) or nil end,
  number = function(s)
    local n = tonumber(s)
    return finite(n) and n or nil
  end,
  boolean = function(s)
    if s == "true" then return true elseif s == "false" then return false end
    return nil
  end,
}

--- from_text(op, params) -> params: the CLI's text arguments as the types
-- the spec gives them (42 for an integer `id`, true for a boolean). Text
-- that cannot be read as its type is left as it is, so the library's check
-- then names the parameter and the type it expects; values that are
-- already typed (key:=json, @file.json) are kept.
function M.from_text(op, params)
  for name, v in pairs(params) do
    local convert = type(v) == "string" and FROM_TEXT[M.type_of(op, name)]
    if convert then
      local typed = convert(v)
      if typed ~= nil then params[name] = typed end
    end
  end
  return params
end

return M
