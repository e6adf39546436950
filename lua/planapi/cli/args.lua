-- cli/args.lua: the command line, parsed.
--   planapi [options] <api> <operation...> [key.path=value | key.path:=json | @file.json]...
-- key.path=value nests (task.id=42 gives { task = { id = "42" } }); a key
-- given twice becomes a list (users.id=1 users.id=2); key:=json takes a
-- JSON value (count:=3, done:=true, description:=null); @file.json merges a
-- JSON object from a file.
local core = require "planapi.core"

local M = {}

M.OPTIONS = {
  ["--profile"] = "value", ["--format"] = "value", ["--columns"] = "value", ["--resume"] = "value",
  ["--output"] = "value", ["--keep-nulls"] = "flag", ["--dry-run"] = "flag",
  ["--max-items"] = "value", ["--listen"] = "value", ["--handler"] = "value", ["--store"] = "value",
  ["--secret-in"] = "value", ["--max-requests"] = "value",
  ["--all"] = "flag", ["--help"] = "flag", ["-h"] = "flag", ["--version"] = "flag",
}

local function usage_error(msg)
  error({ usage = msg }, 0)
end
M.usage_error = usage_error

-- Put value at the dotted path of t; a second value at the same path makes a list.
local function put(t, path, value)
  local keys = {}
  for k in path:gmatch "[^%.]+" do keys[#keys + 1] = k end
  if #keys == 0 or path:find "%.%." or path:find "^%." or path:find "%.$" then
    usage_error("bad parameter name '" .. path .. "'")
  end
  for i = 1, #keys - 1 do
    local k = keys[i]
    if t[k] == nil then t[k] = {} end
    if type(t[k]) ~= "table" then usage_error("parameter '" .. path .. "' nests under a value") end
    t = t[k]
  end
  local last = keys[#keys]
  local old = t[last]
  if old == nil then
    t[last] = value
  elseif type(old) == "table" and old[1] ~= nil and not old.__single then
    old[#old + 1] = value
  else
    t[last] = { old, value }
  end
end

local function read_json_file(path)
  local f, err = io.open(path, "rb")
  if not f then usage_error("cannot read " .. path .. ": " .. tostring(err)) end
  local text = f:read "a"
  f:close()
  local v, derr = core.json_decode(text, "keep") -- a body to send: null means null
  if type(v) ~= "table" then usage_error(path .. " is not a JSON object: " .. (derr and derr.message or "")) end
  return v
end

--- rest_params(op_id, params) -> params: a REST operation's text arguments
-- typed as the spec types them (id=42 is the integer 42 where the spec says
-- integer, inFavorites=true the boolean), by the table the library checks
-- with (planfix_rest/params.lua); text that is not of its type stays text,
-- and the library's check then names the parameter and the type.
function M.rest_params(op_id, params)
  local op = require("planapi.planfix_rest").operation(op_id)
  if not op then return params end
  return require("planapi.planfix_rest.params").from_text(op, params)
end

--- Parse argv into { options = {...}, words = {...}, params = {...} }.
function M.parse(argv)
  local out = { options = {}, words = {}, params = {} }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local kind = M.OPTIONS[a]
    if kind == "flag" then
      out.options[a] = true
    elseif kind == "value" then
      i = i + 1
      if argv[i] == nil then usage_error(a .. " needs a value") end
      out.options[a] = argv[i]
    elseif a:sub(1, 2) == "--" then
      usage_error("unknown option " .. a)
    elseif a:sub(1, 1) == "@" then
      for k, v in pairs(read_json_file(a:sub(2))) do out.params[k] = v end
    else
      local key, json = a:match "^([%w_%.%[%]%-]+):=(.*)$"
      local k2, value = a:match "^([%w_%.%[%]%-]+)=(.*)$"
      if key then
        local v, err = core.json_decode(json, "keep")
        if v == nil and json ~= "null" then usage_error("bad JSON for " .. key .. ": " .. err.message) end
        put(out.params, key, v)
      elseif k2 then
        put(out.params, k2, value)
      else
        out.words[#out.words + 1] = a
      end
    end
    i = i + 1
  end
  return out
end

return M
