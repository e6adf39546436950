-- planado/init.lua: the Planado API v2 client (Planado's API v2 documentation).
--
-- The API's rules, handled: a key left out of a Lua table is left out of
-- the JSON and planapi.null sends null (any depth); documented fields only
-- (strict) because Planado ignores unknown keys; keyset paging by `after`;
-- 60 requests/minute with bursts; 429 and the "200 text/plain Rate Limit
-- Exceeded" quirk both retried; a POST that may have reached the server is
-- reconciled by its external_id instead of being sent twice.
local core = require("planapi.core")
local base = require("planapi.client_base")
local scaffold = require("planapi.scaffold")
local FIELDS = require("planapi.planado.fields")
local recovery = require("planapi.planado.create_recovery")

local config_error = base.config_error

local Planado = {}

local SPEC = {
  api = "planado", pager_name = "planado:pager",
  options = { api_key = "string", url = "string", auth_header = "string", strict = "boolean",
    rate_limit_wait = "number" },
  call_options = { query = "table", headers = "table", notify_assignees = "boolean", timeout = "number",
    dry_run = "boolean|string" },
  -- beside the pager's own (pager.lua)
  pager_options = { list_key = "string", cursor_field = "string", headers = "table", timeout = "number" },
  fields = { "base_url", "strict", "rate_limit_wait" },
  -- pd.jobs, pd.clients...: loaded on first use
  resources = function() return require "planapi.planado.resources" end,
  describe = function(self) return ("planapi.planado (%s)"):format(self.base_url) end,
}
scaffold.class(Planado, SPEC)
Planado.create, Planado.recover_taken = recovery.create, recovery.recover_taken

local DEFAULT_URL = "https://api.planadoapp.com/v2/"
-- A leaky bucket of 60 a minute that "allows occasional spikes" (Planado's API
-- documentation; newer docs say 90): 1 a second sustained, bursts of 5.
local DEFAULT_RATE = { rate = 60, per = 60, burst = 5, margin = 0 }
-- Wait after a 429 without Retry-After: the bucket leaks one request a second.
local DEFAULT_RATE_LIMIT_WAIT = 2

--- planapi.planado{ api_key = "...", url = ..., auth_header = ..., strict = true, ... }
function Planado.new(opts)
  scaffold.check_options(SPEC, opts)
  if opts.api_key == nil or opts.api_key == "" then config_error("planado option 'api_key' is required", 2) end
  local header = opts.auth_header or "Authorization"
  local headers
  if header == "Authorization" then
    headers = { Authorization = "Bearer " .. opts.api_key }
  elseif header == "X-Planado-API-Key" then
    headers = { ["X-Planado-API-Key"] = opts.api_key } -- the legacy form
  else
    config_error("planado option 'auth_header' must be \"Authorization\" (Bearer) or \"X-Planado-API-Key\"", 2)
  end
  local self, url = scaffold.instance(Planado, {
    strict = opts.strict ~= false,
    rate_limit_wait = opts.rate_limit_wait or DEFAULT_RATE_LIMIT_WAIT,
  }, opts, {
    base_url = opts.url or DEFAULT_URL, headers = headers, secrets = { opts.api_key }, rate = DEFAULT_RATE,
    -- whether Planado limits per key or per account is unknown: per key, named by
    -- a hash so the key itself never reaches a file or Redis
    key = "planado:" .. core.md5_hex(opts.api_key):sub(1, 16),
  })
  self.base_url = url
  return self
end

-- Filters as the API expects them: lists as `key[]=`, nested tables as
-- `key[sub]=` (status = {"posted"} -> status[]=posted; scheduled_at =
-- { after = t } -> scheduled_at[after]=t).
local function flatten_query(params, prefix, out)
  out = out or {}
  for k, v in pairs(params) do
    if type(k) ~= "string" then config_error("query parameter names must be strings", 4) end
    local key = prefix and (prefix .. "[" .. k .. "]") or k
    if type(v) == "table" then
      if v[1] ~= nil or core.is_array(v) then
        out[key .. "[]"] = v
      else
        flatten_query(v, key, out)
      end
    elseif v ~= core.null then
      out[key] = v
    end
  end
  return out
end
Planado.flatten_query = flatten_query

--- Check a body against the documented fields of a resource kind: unknown
-- keys and nulls where the API refuses them raise a config error.
function Planado:check_fields(kind, body, level)
  if not self.strict or type(body) ~= "table" then return end
  local fields = FIELDS[kind]
  for k, v in pairs(body) do
    local nullable = fields[k]
    if nullable == nil then
      local names = base.sorted_keys(fields)
      config_error(("unknown %s field '%s' (Planado would ignore it silently); valid: %s; "
        .. "strict = false sends it anyway"):format(kind, tostring(k), table.concat(names, ", ")), (level or 1) + 1)
    end
    if v == core.null and not nullable then
      config_error(("%s field '%s' cannot be null; leave the key out to keep the value"):format(kind, k),
        (level or 1) + 1)
    end
  end
end

-- A call without options reads this one (prepare never writes to opts):
-- no table allocated per call.
local NO_OPTIONS = {}
-- The methods checked once ("GET", "POST"...): no pattern match per call.
local SEEN_METHODS = {}

--- pd:prepare(method, path, params, opts) -> req (pure)
-- params: the query of a GET/DELETE, the JSON body of a POST/PATCH.
-- opts: { query =, headers =, notify_assignees = false, timeout = }
function Planado:prepare(method, path, params, opts)
  if not SEEN_METHODS[method] then
    if type(method) ~= "string" or not method:match "^%u+$" then
      config_error("HTTP method required, e.g. \"GET\"", 2)
    end
    SEEN_METHODS[method] = true
  end
  if type(path) ~= "string" then config_error("path required, e.g. \"jobs\"", 2) end
  if params == nil and opts == nil and (method == "GET" or method == "DELETE") then
    -- a read or a delete by path alone (most calls): core:prepare's
    -- two-argument form, the request prepare{ method =, path = } makes,
    -- named as below
    return self.core:prepare(method, path)
  end
  if opts == nil then
    opts = NO_OPTIONS
  else
    scaffold.check_call_options(SPEC, opts, 2)
  end
  local query, body
  if method == "GET" or method == "DELETE" then
    query = params and flatten_query(params) or nil
  else
    body = params or {}
    query = opts.query and flatten_query(opts.query) or nil
  end
  local headers -- nil unless the call adds some (the C client's are enough)
  if opts.headers then
    headers = {}
    for k, v in pairs(opts.headers) do headers[k] = v end
  end
  if opts.notify_assignees == false then
    headers = headers or {}
    headers["X-Planado-Notify-Assignees"] = "false"
  end
  local spec = { method = method, path = path, body = body, headers = headers, timeout = opts.timeout }
  if query and next(query) then spec.query = query end
  local req = self.core:prepare(spec)
  req.operation = method .. " " .. (path:byte(1) == 47 and path:sub(2) or path) -- without a leading /
  if opts.dry_run ~= nil then req.dry_run = opts.dry_run end
  return req
end

-- The message of an error body whose shape is undocumented: JSON with
-- errors / error / message, or the start of the text. The text is redacted
-- whole before it is cut (a cut secret escapes a whole-string search), and
-- again at the cut, which masks what is left of a secret cut there.
local function error_text(self, body, decoded)
  if type(decoded) == "table" then
    local errs = decoded.errors
    if type(errs) == "table" then
      local parts = {}
      for k, e in pairs(errs) do
        if type(e) == "table" then e = e.message or e.detail or e.title end
        if type(e) == "string" then parts[#parts + 1] = type(k) == "string" and (k .. ": " .. e) or e end
      end
      table.sort(parts)
      if #parts > 0 then return table.concat(parts, "; ") end
    end
    for _, key in ipairs { "error", "message", "status" } do
      if type(decoded[key]) == "string" then return decoded[key] end
    end
  end
  local text = self.core:redact(body or ""):gsub("%s+", " ")
  text = self.core:redact(text, 200)
  return text ~= "" and text or nil
end

-- The quirk: HTTP 200, text/plain "Rate Limit Exceeded" instead of a 429.
-- JSON never opens with those words: parse asks only of an answer that did
-- not decode (which costs a JSON answer nothing).
local function rate_limit_text(body)
  return body:sub(1, 20):lower():match "^%s*rate limit" ~= nil
end

-- The error of a 429 or of the text quirk: retried after Retry-After, else
-- after rate_limit_wait.
local function rate_limited(self, op, status, res)
  return nil, self.core:error { kind = "rate_limit", status = status, operation = op, retryable = true,
    rejected = true, retry_after = base.retry_after(res.headers or {}) or self.rate_limit_wait,
    message = status == 429 and "too many requests" or "rate limit exceeded (HTTP 200 text quirk)" }
end

--- pd:parse(req, res) -> result | nil, err (pure)
function Planado:parse(req, res)
  local op = req.operation
  local status = res.status or 0
  if status == 429 then return rate_limited(self, op, status, res) end
  if status >= 300 and status < 400 then return base.redirect_error(self, op, res) end
  local body = res.body or ""
  local decoded, derr = self.core:decode(res, self.nulls)
  if decoded == nil and status < 300 and rate_limit_text(body) then return rate_limited(self, op, status, res) end
  if status >= 200 and status < 300 then
    if decoded == nil then
      derr.operation = op
      return nil, derr
    end
    return decoded
  end
  local kind, retryable = "api", false
  if status == 401 or status == 403 then
    kind = "auth"
  elseif status >= 500 or status == 0 then
    kind, retryable = "http", true
  end
  local message = error_text(self, body, decoded) or ("HTTP status " .. status)
  local err = self.core:error { kind = kind, status = status, operation = op, retryable = retryable,
    message = message }
  if recovery.refuses_taken_external_id(status, message) then err.external_id_taken = true end
  -- Keep the raw body (its shape is undocumented), redacted, then bounded.
  err.body = self.core:redact(body, 2000)
  return nil, err
end

--- pd:call(method, path, params, opts) -> result, meta | nil, err
-- Reaches anything the resources do not cover. GET, PATCH, DELETE and
-- PUT are retried on 5xx, resets and timeouts; a POST only when the
-- server certainly did nothing with it (a 429, nothing sent).
function Planado:call(method, path, params, opts)
  local req = self:prepare(method, path, params, opts)
  req.idempotent = method ~= "POST"
  return base.run(self, req)
end

-- What guard.lua asks of a client (dry run and write guards): every
-- method but GET writes; the resource is the path's collection ("jobs").
function Planado.is_write(_, req)
  return req.method ~= "GET"
end

function Planado.resource_of(_, req)
  return req.operation:match "^%u+ ([^/?]+)"
end

-- The list in a page's answer: under list_key, or the first array.
local function page_items(result, list_key)
  local items = list_key and result[list_key]
  if items == nil then
    for _, v in pairs(result) do
      if type(v) == "table" and (v[1] ~= nil or next(v) == nil) then return v end
    end
  end
  return items or {}
end

--- pd:pager(path, params, opts) -> pager over `after` keyset pages;
-- pd:pages, pd:each and pd:all (scaffold.lua) take the same arguments.
-- opts: list_key (the array in the answer; found by itself otherwise),
-- cursor, max_pages, max_items (pager.truncated says when a cap cut the
-- list), dedupe, and the call options.
function Planado:pager(path, params, opts)
  opts = scaffold.pager_options(SPEC, opts)
  local fixed = scaffold.copy(params, { "after" })
  local first_after = params and params.after
  local call_opts = { headers = opts.headers, timeout = opts.timeout }
  local list_key = opts.list_key
  local by = opts.cursor_field or "uuid"
  return scaffold.walk(opts, function(cursor)
    local p = scaffold.copy(fixed)
    p.after = cursor and cursor.after or first_after
    local result, err = self:call("GET", path, p, call_opts)
    if not result then return nil, err end
    local items = page_items(result, list_key)
    -- Keyset paging ends with an empty page (Planado's API documentation, paging).
    if #items == 0 then return items, nil end
    local last = items[#items][by]
    if last == nil then
      return nil, self.core:error { kind = "decode", operation = "GET " .. path,
        message = ("a list item has no '%s' to page after"):format(by) }
    end
    return items, { after = last }
  end)
end

return Planado
