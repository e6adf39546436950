-- testing/cassette_mask.lua: what a cassette file never holds, and what a
-- replay compares.
--
-- Masking goes by position and name, so it needs no secret's value: the
-- Authorization header (its scheme kept: "Bearer ***"), cookies, headers,
-- query parameters, JSON members and XML elements named like a credential
-- (token, secret, password, sid, signature, api_key...), and the login of
-- Planfix XML's auth.login. The client's own secrets (its token, keys,
-- password, private key, session id) are masked after that wherever they
-- appear, by the client's redaction: any run of 6 characters of one.
--
-- Matching reads a request in API terms: the operation, the method, the
-- path, the query as a set of parameters and the body as data (JSON and XML
-- decoded, so the order of members does not count); a masked value matches
-- any value, and the XML signature (it changes with every sid) is left out.
local core = require "planapi.core"

local M = {}

M.MASK = "***"

local SECRET_NAMES = {}
for name in ([[authorization proxy_authorization cookie set_cookie token secret password passwd sid
    signature api_key apikey private_key session session_id sessionid x_planado_api_key
    x_planado_secret x_api_key]]):gmatch "%S+" do
  SECRET_NAMES[name] = true
end
local SECRET_SUFFIXES = { "_token", "_secret", "_password", "_api_key", "_apikey", "_private_key", "_signature" }

--- Whether a header, parameter, member or element name names a credential.
function M.secret_name(name)
  local n = name:lower():gsub("-", "_")
  if SECRET_NAMES[n] then return true end
  for _, suffix in ipairs(SECRET_SUFFIXES) do
    if n:sub(-#suffix) == suffix then return true end
  end
  return false
end

--- A header's value as a cassette keeps it.
function M.header(name, value)
  local n = name:lower()
  if n == "authorization" or n == "proxy-authorization" then
    local scheme = value:match "^%s*([%a][%w%-]*)%s"
    return scheme and (scheme .. " " .. M.MASK) or M.MASK
  end
  if M.secret_name(n) then return M.MASK end
  return value
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- name=value&...: the values of credential names masked ("key" too: a
-- query's key= is an API key by custom).
local function form(text)
  local parts = {}
  for pair in text:gmatch "[^&]+" do
    local k, eq = pair:match "^([^=]*)(=?)"
    local name = unescape(k)
    if eq == "=" and (M.secret_name(name) or name:lower() == "key") then pair = k .. "=" .. M.MASK end
    parts[#parts + 1] = pair
  end
  return table.concat(parts, "&")
end

--- A URL without its user:password@ and with its credential parameters masked.
function M.url(url)
  url = url:gsub("^(%a[%w+.-]*://)[^/?#@]*@", "%1" .. M.MASK .. "@")
  local head, query, fragment = url:match "^([^?#]*)%?([^#]*)(.*)$"
  if not head then return url end
  return head .. "?" .. form(query) .. fragment
end

-- The end of the JSON string whose opening quote is at i - 1: the index of
-- its closing quote (or past the text).
local function string_end(text, i)
  while i <= #text do
    local c = text:byte(i)
    if c == 92 then -- a backslash escapes the next character
      i = i + 2
    elseif c == 34 then
      return i
    else
      i = i + 1
    end
  end
  return i
end

-- A string value that is JSON text itself (a delivery log's request body):
-- its credentials masked too, the value encoded again only when one was.
local function nested_json(raw)
  if not raw:find('\\"', 1, true) then return raw end
  local ok, value = pcall(core.json_decode, '"' .. raw .. '"')
  if not ok or type(value) ~= "string" or not value:match "^%s*[{%[]" then return raw end
  local masked = M.json(value)
  if masked == value then return raw end
  return core.json_encode(masked):sub(2, -2)
end

--- JSON text with the string values of credential members masked, the
-- rest of the text byte for byte as it was.
function M.json(text)
  local out, pos = {}, 1
  while true do
    local _, e, name = text:find('"([^"\\]+)"%s*:%s*"', pos)
    if not e then break end
    local close = string_end(text, e + 1)
    if M.secret_name(name) then
      out[#out + 1] = text:sub(pos, e) .. M.MASK
    else
      out[#out + 1] = text:sub(pos, e) .. nested_json(text:sub(e + 1, close - 1))
    end
    pos = close
  end
  out[#out + 1] = text:sub(pos)
  return table.concat(out)
end

--- XML text with the text of credential elements masked (and the login of
-- operation auth.login).
function M.xml(text, operation)
  return (text:gsub("<([%w_:%-]+)([^<>]*)>([^<]*)</%1>", function(name, attrs, value)
    local local_name = name:match "[^:]+$"
    if value ~= "" and attrs:sub(-1) ~= "/"
      and (M.secret_name(local_name) or (local_name == "login" and operation == "auth.login")) then
      return "<" .. name .. attrs .. ">" .. M.MASK .. "</" .. name .. ">"
    end
  end))
end

--- A body as a cassette keeps it, by what it is: JSON, XML or a form.
function M.body(text, content_type, operation)
  local first = text:match "^%s*(.)"
  if first == "{" or first == "[" then return M.json(text) end
  if first == "<" then return M.xml(text, operation) end
  if content_type and content_type:lower():find("x-www-form-urlencoded", 1, true) then return form(text) end
  return text
end

-- ------------------------------------------------------------ matching

local function query_terms(query)
  local terms = {}
  for pair in query:gmatch "[^&]+" do
    local k, v = pair:match "^([^=]*)=?(.*)$"
    k = unescape(k)
    terms[k] = terms[k] or {}
    table.insert(terms[k], unescape(v))
  end
  for _, values in pairs(terms) do table.sort(values) end
  return terms
end

local function body_terms(body)
  local first = body:match "^%s*(.)"
  if first == "{" or first == "[" then
    local ok, doc = pcall(core.json_decode, body)
    if ok and doc ~= nil then return doc end
  elseif first == "<" then
    local doc = core.xml_decode(body, {})
    if doc then
      doc.signature = nil
      return doc
    end
  end
  return body
end

--- A recorded or live request (already masked) in API terms.
function M.terms(request)
  local url = request.url or ""
  local path, query = url:gsub("^%a[%w+.-]*://[^/?#]*", ""):match "^([^?#]*)%??([^#]*)"
  return {
    operation = request.operation, method = request.method, path = path,
    query = query_terms(query), body = body_terms(request.body or ""),
  }
end

-- A recorded string that holds a mask matches any text in its place.
local function masked_match(recorded, live)
  if not recorded:find(M.MASK, 1, true) then return false end
  local parts = {}
  for piece in (recorded .. M.MASK):gmatch "(.-)%*%*%*" do
    parts[#parts + 1] = piece:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  end
  return live:match("^" .. table.concat(parts, ".-") .. "$") ~= nil
end

local function sorted_names(a, b)
  local names, seen = {}, {}
  for _, t in ipairs { a, b } do
    for k in pairs(t) do
      if not seen[k] then names[#names + 1], seen[k] = k, true end
    end
  end
  table.sort(names, function(x, y) return tostring(x) < tostring(y) end)
  return names
end

--- Where a recorded value and a live one first differ: a path such as
-- "body.task.title", or nil when they match.
function M.difference(recorded, live, path)
  if type(recorded) == "string" and type(live) == "string" then
    -- (either side: a cassette recorded with mask = false, a live value masked)
    if recorded == live or masked_match(recorded, live) or masked_match(live, recorded) then return nil end
    return path
  end
  if type(recorded) ~= "table" or type(live) ~= "table" then
    return recorded ~= live and path or nil
  end
  for _, k in ipairs(sorted_names(recorded, live)) do
    local d = M.difference(recorded[k], live[k], path .. "." .. tostring(k))
    if d then return d end
  end
  return nil
end

return M
