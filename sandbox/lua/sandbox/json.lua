-- JSON for the sandbox.
--
-- Decoding uses lua-cjson (fast, strict). Encoding is our own because the
-- Debian lua-cjson (2.1.0) has neither cjson.array_mt nor cjson.empty_array:
-- with it an empty Lua table is always "{}", yet the API must answer
-- "tasks":[] for an empty page. Our encoder also sorts object keys, so every
-- answer is byte-for-byte deterministic.
local cjson = require("cjson.safe").new()
-- Strict JSON only: cjson would otherwise accept NaN, Infinity and hex
-- numbers, which a real (Java) Planfix backend rejects.
cjson.decode_invalid_numbers(false)

local M = {}

M.null = cjson.null

local ARRAY_MT = { __name = "json.array" }
local RAW_MT = { __name = "json.raw" }

-- Marks t (default: new table) as a JSON array, so it encodes as [] even if empty.
function M.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

function M.is_array(t)
  return getmetatable(t) == ARRAY_MT
end

-- Wraps an already encoded JSON text so that it is embedded verbatim
-- (used to echo request bodies in the log without losing [] vs {}).
function M.raw(text)
  return setmetatable({ text = text }, RAW_MT)
end

-- Returns value or nil, err. Note: cjson decodes "[]" to a plain empty
-- table, which re-encodes as "{}"; the log therefore embeds the raw body.
function M.decode(text)
  local v, err = cjson.decode(text)
  if v == nil and err then return nil, err end
  return v
end

local escapes = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

-- Invalid UTF-8 bytes cannot appear in JSON text; they are mapped as if the
-- byte were Latin-1 (\u00XX). Callers that need binary fidelity base64 first.
local function fix_utf8(s)
  if not s:find("[\128-\255]") then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c <= 0xDF) and 2
      or (c >= 0xE0 and c <= 0xEF) and 3 or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local ok = len > 0
    if ok and len > 1 then
      for k = i + 1, i + len - 1 do
        local b = s:byte(k)
        if not b or b < 0x80 or b > 0xBF then ok = false break end
      end
    end
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      i = i + len
    else
      out[#out + 1] = string.format("\\u%04x", c)
      i = i + 1
    end
  end
  return table.concat(out)
end

function M.valid_utf8(s)
  return fix_utf8(s) == s
end

local function encode_string(s)
  s = s:gsub('[%c"\\]', function(c)
    return escapes[c] or string.format("\\u%04x", c:byte())
  end)
  -- fix_utf8 runs after escaping so its "\u00XX" backslashes stay intact.
  return '"' .. fix_utf8(s) .. '"'
end

local function is_sequence(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then return false end
    n = n + 1
  end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return n > 0
end

local encode_value

local function encode_number(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if v % 1 == 0 and v > -1e15 and v < 1e15 then
    return string.format("%d", v)
  end
  return string.format("%.14g", v)
end

local function encode_table(t, buf, depth)
  if depth > 100 then error("json: nesting too deep") end
  local mt = getmetatable(t)
  if mt == RAW_MT then
    buf[#buf + 1] = t.text
    return
  end
  if mt == ARRAY_MT or is_sequence(t) then
    buf[#buf + 1] = "["
    for i = 1, #t do
      if i > 1 then buf[#buf + 1] = "," end
      encode_value(t[i], buf, depth + 1)
    end
    buf[#buf + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" or type(k) == "number" then keys[#keys + 1] = tostring(k) end
  end
  -- Sorted for determinism, but "result" first as Planfix writes it.
  table.sort(keys, function(a, b)
    if a == "result" or b == "result" then return a == "result" and b ~= "result" end
    return a < b
  end)
  buf[#buf + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then buf[#buf + 1] = "," end
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    buf[#buf + 1] = encode_string(k)
    buf[#buf + 1] = ":"
    encode_value(v, buf, depth + 1)
  end
  buf[#buf + 1] = "}"
end

encode_value = function(v, buf, depth)
  local tv = type(v)
  if v == nil or v == M.null then
    buf[#buf + 1] = "null"
  elseif tv == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif tv == "number" then
    buf[#buf + 1] = encode_number(v)
  elseif tv == "string" then
    buf[#buf + 1] = encode_string(v)
  elseif tv == "table" then
    encode_table(v, buf, depth)
  else
    buf[#buf + 1] = "null"
  end
end

function M.encode(v)
  local buf = {}
  encode_value(v, buf, 0)
  return table.concat(buf)
end

return M
