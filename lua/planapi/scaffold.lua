-- scaffold.lua: the class every API client is built on. An API package
-- declares once what is its own (its options by type, its fields, its
-- resources, its paging shape) and gets the rest from here: option checks,
-- resource binding, and the methods every client has (perform, pages, each,
-- all, close). The call loop and the client's setup are client_base's.
--
-- Adding a capability to all three clients is written once: a method in
-- scaffold.methods, an option in client_base.LOOP_OPTIONS read by
-- client_base.init, a step in client_base.run.
local base = require("planapi.client_base")
local Pager = require("planapi.pager")
local options = require("planapi.options")
local config_error = require("planapi.config_error")
local suggest = require("planapi.suggest")

local S = {}

--- " (did you mean a, b?)" for a slip of one of the names in set, or "".
function S.did_you_mean(name, set, most, distance)
  local near = suggest.nearest(name, set, most, distance)
  if #near == 0 then return "" end
  return " (did you mean " .. table.concat(near, ", ") .. "?)"
end

-- ------------------------------------------------------------ methods
--- The methods every client has, looked up after the API's own: one added
-- here (even at run time) is a method of every client.
S.methods = {}
local methods = S.methods

--- client:perform(req) -> res | nil, err: the transport alone (libcurl, or
-- the `transport` option), no pacing and no retries.
function methods:perform(req)
  return self.transport(req)
end

--- for page in client:pages(...) do ... end (raises on error); the
-- arguments are the client's pager's.
function methods:pages(...)
  return self:pager(...):pages()
end

--- for item in client:each(...) do ... end (raises on error)
function methods:each(...)
  return self:pager(...):each()
end

--- client:all(...) -> items, pager | nil, err: every item in one array,
-- without raising (set max_items on lists that may be huge; pager.truncated
-- says when it cut the list).
function methods:all(...)
  local pager = self:pager(...)
  local items, err = pager:all()
  if items == nil then return nil, err end
  return items, pager
end

function methods:close()
  base.close(self)
end

--- An API's catalogue of operations by name (REST's operationIds, XML's
-- methods): returns names() -> the sorted names, describe(name) -> its
-- description or nil, and lookup(name, level) -> its description, or a
-- config error naming the nearest names. what:
-- "Planfix REST operation"; known: "%d operations are known, listed by
-- planfix_rest.operations()".
function S.catalogue(tbl, what, known)
  local function names() return base.sorted_keys(tbl) end
  local function lookup(name, level)
    local found = tbl[name]
    if found then return found end
    local all = names()
    config_error(("unknown %s '%s'%s; " .. known):format(what, tostring(name), S.did_you_mean(name, tbl), #all),
      (level or 1) + 1, { valid = all })
  end
  return names, function(name) return tbl[name] end, lookup
end

-- ------------------------------------------------------------ the class
-- Fields init and the call loop keep on every client, some of them nil
-- (quota, limiter, pacer...): reading one is no mistyped resource.
local CLIENT_FIELDS = { "core", "limiter", "pacer", "confirm", "quota", "policy", "clock", "sleep",
  "transport", "transport_kind", "on_request", "hooks", "nulls", "remaining", "keep_params" }

-- names: the resources module's names(), a list of names or a map of name -> methods.
local function unknown_resource(api_name, key, names)
  local set, valid = {}, {}
  for k, v in pairs(names) do set[type(k) == "string" and k or v] = true end
  for name in pairs(set) do valid[#valid + 1] = name end
  table.sort(valid)
  -- level 3: unknown_resource, the __index function, the user's line
  config_error(("unknown %s resource '%s'%s; the resources are %s"):format(api_name, tostring(key),
    S.did_you_mean(key, set, 1, 2), table.concat(valid, ", ")), 3, { valid = valid })
end

-- The __index of an API client class: its methods, the shared ones, then
-- its resources, and a config error naming the resources for any other
-- name, so that `rest.task:get(1)` (for rest.tasks) fails at the user's
-- line instead of as "attempt to index a nil value". The resources load on
-- first use.
local function resource_index(class, spec)
  local fields = {}
  for _, k in ipairs(CLIENT_FIELDS) do fields[k] = true end
  for _, k in ipairs(spec.fields or {}) do fields[k] = true end
  local resources
  return function(self, key)
    local method = class[key]
    -- a field left nil (quota, pacer...) is read on every call: answered first
    if method ~= nil or fields[key] or type(key) ~= "string" then return method end
    method = methods[key]
    if method ~= nil then return method end
    resources = resources or spec.resources()
    local res = resources.bind(self, key)
    if res == nil then unknown_resource(spec.api, key, resources.names()) end
    rawset(self, key, res)
    return res
  end
end

--- Make Class an API client class. spec = {
--   api = "planfix_rest", pager_name = "rest:pager" (in its messages),
--   options = the client's own options, call_options = a call's,
--   pager_options = its pager's beside the pager's own (name -> type),
--   max_page_size = the API's cap (nil: no page size),
--   fields = the API's own instance fields,
--   resources = function() -> a module with bind(client, name) -> resource | nil
--     and names() (see S.resources),
--   describe = function(self) -> what tostring(client) says }
function S.class(Class, spec)
  -- the options by type and the rest, for tools/gen_defs.lua (editor definitions, docs/api)
  Class.SPEC = spec
  Class.__index = resource_index(Class, spec)
  Class.__tostring = spec.describe
  return Class
end

-- The API's methods the call loop reaches on every call, kept on each
-- instance too: a plain read, no __index function per call (_run: the XML
-- client's call).
local HOT_METHODS = { "call", "prepare", "parse", "_run" }

--- A client of Class: fields as its own, base.init's setup done (see
-- client_base.init). Returns it and its base URL as the C client keeps it.
function S.instance(Class, fields, opts, setup)
  local self = setmetatable(fields, Class)
  for _, name in ipairs(HOT_METHODS) do
    local method = rawget(Class, name)
    if method ~= nil then rawset(self, name, method) end
  end
  base.init(self, opts, setup)
  return self, self.core:config().base_url
end

-- ------------------------------------------------------------ options
--- Check a client's options (its own and the shared ones).
function S.check_options(spec, opts)
  base.check_options(spec.api, opts, spec.options)
end

--- Check a call's options (level: as config_error's, from the caller).
-- A call without options costs one next().
function S.check_call_options(spec, opts, level)
  if next(opts) == nil then return end
  options.check("call", opts, (level or 1) + 1, spec.call_options)
end

--- Check a pager's options: opts, or {} for none.
function S.pager_options(spec, opts)
  Pager.check_options(spec.pager_name, opts, spec.pager_options)
  return opts or {}
end

--- A page size checked against the API's cap: v, or the default when nil.
-- what names it in the message ("page_size", "planado option 'page_size'").
function S.page_size(spec, v, what, default)
  if v == nil then v = default end
  local max = spec.max_page_size
  if type(v) ~= "number" or v < 1 or v > max or v % 1 ~= 0 then
    config_error(("%s must be a whole number from 1 to %d (the API's cap)"):format(what, max), 3)
  end
  return v
end

-- ------------------------------------------------------------ paging
--- A shallow copy of t (nil: {}), without the keys listed in drop.
function S.copy(t, drop)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  for _, k in ipairs(drop or {}) do out[k] = nil end
  return out
end

--- The pager over fetch(cursor) -> items, next_cursor | nil, err, with the
-- pager's own options of opts (cursor, max_pages, max_items, dedupe).
function S.walk(opts, fetch)
  return Pager.new(fetch, { cursor = opts.cursor, max_pages = opts.max_pages, max_items = opts.max_items,
    dedupe = opts.dedupe, errors = opts.errors, on_error = opts.on_error })
end

-- ------------------------------------------------------------ resources
--- A resources module from data: defs = { name = { method = def } },
-- make(client, def) -> the method; extras = { name = { method =
-- function(client) -> the method } } for the methods made otherwise.
-- Returns { bind = function(client, name) -> resource | nil,
--           names = function() -> { name = sorted method names },
--           defs =, extras = (read by tools/gen_defs.lua) }.
function S.resources(defs, make, extras)
  extras = extras or {}
  local R = { defs = defs, extras = extras }
  function R.bind(client, name)
    local d = defs[name]
    if d == nil then return nil end
    local res = {}
    for m, def in pairs(d) do res[m] = make(client, def) end
    for m, build in pairs(extras[name] or {}) do res[m] = build(client) end
    return res
  end
  function R.names()
    local out = {}
    for name, d in pairs(defs) do
      local names = {}
      for m in pairs(d) do names[#names + 1] = m end
      for m in pairs(extras[name] or {}) do names[#names + 1] = m end
      table.sort(names)
      out[name] = names
    end
    return out
  end
  return R
end

-- ------------------------------------------------------------ downloads
--- Fetch a server-given link (a download's redirect) without the client's
-- credentials, checked first (client_base.check_location): res (status
-- 200) | nil, err. sink: a path to stream the body into.
function S.follow(self, operation, location, sink, failed)
  local ok, err = base.check_location(self, operation, location)
  if not ok then return nil, err end
  local req = self.core:prepare { method = "GET", url = location, headers = { Accept = "*/*" } }
  req.sink = sink
  local res
  res, err = self.transport(req)
  if not res then
    err.operation = err.operation or operation
    return nil, err
  end
  if res.status ~= 200 then
    return nil, self.core:error { kind = "http", status = res.status, operation = operation,
      message = failed, retryable = res.status >= 500 }
  end
  return res
end

return S
