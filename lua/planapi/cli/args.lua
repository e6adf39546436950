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
  ["--output"] = "value", ["--keep-nulls"] = "flag", ["--dry-run"] = "flag", ["--rate"] = "value",
  ["--limiter"] = "value",
  ["--max-items"] = "value", ["--listen"] = "value", ["--handler"] = "value", ["--store"] = "value",
  ["--secret-in"] = "value", ["--max-requests"] = "value", ["--dir"] = "value",
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

local PERIOD_UNIT = { s = 1, m = 60, h = 3600 }

--- rate("2/1m") -> { rate = 2, per = 60 }: the clients' `rate` option from
-- N/PERIOD, PERIOD a number of seconds or of s, m or h with the number
-- optional (1/s, 90/60s, 2/1m, 1/2.5); a usage error for anything else.
function M.rate(text)
  local n, count, unit = text:match "^(%d+%.?%d*)/(%d*%.?%d*)([smh]?)$"
  n, count = tonumber(n), count == "" and 1 or tonumber(count)
  local per = count and PERIOD_UNIT[unit ~= "" and unit or "s"] * count
  if not (n and per and n > 0 and per > 0) or (unit == "" and text:match "/$") then
    usage_error(("--rate takes N/PERIOD, such as 1/s, 2/1m or 90/60s (got '%s')"):format(text))
  end
  return { rate = n, per = per }
end

--- limiter(text) -> text: the clients' `limiter` option, checked. A Redis
-- password is refused here: the command line shows in `ps` (PLANAPI_LIMITER).
function M.limiter(text)
  if text:match "^redis://[^/]*@" then
    usage_error "--limiter: a Redis password does not go on the command line (ps shows it): set PLANAPI_LIMITER"
  end
  if text == "local" or text:match "^shm:." or text:match "^redis://[^/]" then return text end
  usage_error(("--limiter takes local, shm:<file> or redis://host:port/db (got '%s')"):format(text))
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
      usage_error("unknown option " .. a:match "^[^=]*") -- not its value: --secret=... must not be echoed
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
