-- builds_probe.lua: run by spec/64 under each interpreter with its own build of the module:
-- reads the inputs the spec wrote (a Lua file: strings, JSON texts, numbers) and writes what
-- the core makes of them, one result per line, in a form that does not depend on the
-- interpreter (table keys sorted, numbers with their subtype, every byte as hex).
--   <lua> spec/helpers/builds_probe.lua <cpath> <inputs.lua> <out>
local cpath, inputs_path, out_path = arg[1], arg[2], arg[3]
package.cpath = cpath .. ";" .. package.cpath
local core = require "planapi.core"
local inputs = dofile(inputs_path)

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function number_form(n)
  local subtype = math.type and math.type(n) or "float"
  if subtype == "integer" then return "i" .. ("%d"):format(n) end
  if n ~= n then return "nan" end
  return "f" .. ("%.17g"):format(n)
end

-- The decoded value as text, keys sorted, arrays told from objects.
local function canonical(v)
  local t = type(v)
  if t == "number" then return number_form(v) end
  if t == "string" then return "s" .. hex(v) end
  if t ~= "table" then return tostring(v == core.null and "null" or v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return canonical(a) < canonical(b) end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = canonical(k) .. "=" .. canonical(v[k]) end
  return (core.is_array(v) and "[" or "{") .. table.concat(parts, ",") .. "}"
end

-- A call's results, or its error's kind and message.
local function result(f, ...)
  local ok, a, b = pcall(f, ...)
  if not ok then return "raised " .. tostring(type(a) == "table" and a.kind or a) end
  if a == nil then return "nil " .. tostring(b) end
  return type(a) == "string" and "s" .. hex(a) or canonical(a)
end

local lines = {}
local function say(...) lines[#lines + 1] = table.concat({ ... }, " ") end

for i, s in ipairs(inputs.strings) do
  say("md5", i, core.md5_hex(s))
  say("base64", i, result(core.base64, s))
  say("url_escape", i, result(core.url_escape, s))
  say("encode_query", i, result(core.encode_query, { q = s, n = i }))
  say("redact", i, result(core.redact, "before " .. s .. " after", { "after" }))
  say("secure_equals", i, tostring(core.secure_equals(s, s)), tostring(core.secure_equals(s, s .. "x")))
end
for i, doc in ipairs(inputs.json) do
  local decoded, err = core.json_decode(doc)
  say("json_decode", i, decoded == nil and "nil " .. tostring(err) or canonical(decoded))
  if decoded ~= nil then say("json_again", i, result(core.json_decode, core.json_encode(decoded))) end
end
say("json_encode numbers", result(core.json_encode, inputs.numbers))

local f = assert(io.open(out_path, "wb"))
f:write(table.concat(lines, "\n"), "\n")
f:close()
