-- The control API under /_sandbox/: lets tests reset the world, configure
-- rate/quota/queueing, inject faults, bulk-generate data and read the log.
-- No auth; JSON in and out; never logged or counted as API traffic.
local json = require("sandbox.json")
local util = require("sandbox.util")
local store = require("sandbox.store")
local auth = require("sandbox.auth")
local faults = require("sandbox.faults")
local ratelimit = require("sandbox.ratelimit")
local latency = require("sandbox.latency")
local recorder = require("sandbox.recorder")
local rest = require("sandbox.rest")
local xmlapi = require("sandbox.xmlapi")
local xml = require("sandbox.xml")
local planado = require("sandbox.planado")
local scenarios = require("sandbox.planfix_scenarios")
local fields_control = require("sandbox.fields_control")

local M = {}

local function reply(status, value)
  return util.send_json(status, value)
end

local function bad(msg)
  return reply(400, { result = "fail", error = msg })
end

local body_object = util.json_object

-- Bumped by every reset, so requests still in flight from before it can
-- tell that they are stale (see the slow fault in main.lua).
M.generation = 0

function M.reset_all()
  M.generation = M.generation + 1
  store.reset()
  auth.reset()
  faults.reset()
  ratelimit.reset()
  latency.reset()
  recorder.reset()
  rest.reset()
  xmlapi.reset()
  planado.reset()
  scenarios.reset()
end

local function current_config()
  local c = ratelimit.describe()
  util.merge(c, rest.describe())
  util.merge(c, xmlapi.describe())
  util.merge(c, planado.describe())
  util.merge(c, latency.describe())
  util.merge(c, scenarios.describe())
  local tokens = {}
  for name, t in pairs(auth.tokens) do tokens[name] = { scope = t.scope, active = t.active } end
  c.tokens = tokens
  return c
end

local handlers = {}

handlers["GET /health"] = function()
  return reply(200, { result = "success", status = "ok" })
end

handlers["POST /reset"] = function()
  M.reset_all()
  return reply(200, { result = "success" })
end

handlers["GET /config"] = function()
  return reply(200, { result = "success", config = current_config() })
end

handlers["POST /config"] = function(req)
  local cfg = body_object(req)
  if not cfg then return bad("body must be a JSON object") end
  local known = { rate = true, quota = true, queue_updates = true, queue_contact_updates = true,
    download_ttl = true, download_origin = true, report_polls = true, tokens = true, xml = true, planado = true,
    latency = true, scenarios = true }
  for k in pairs(cfg) do
    if not known[k] then return bad("unknown config key '" .. tostring(k) .. "'") end
  end
  local ok, err = ratelimit.configure(cfg)
  if ok then ok, err = rest.configure(cfg) end
  if ok and cfg.tokens ~= nil then ok, err = auth.configure(cfg.tokens) end
  if ok and cfg.xml ~= nil then ok, err = xmlapi.configure(cfg.xml) end
  if ok and cfg.planado ~= nil then ok, err = planado.configure(cfg.planado) end
  if ok and cfg.latency ~= nil then ok, err = latency.configure(cfg.latency) end
  if ok and cfg.scenarios ~= nil then ok, err = scenarios.configure(cfg.scenarios) end
  if not ok then return bad(err) end
  return reply(200, { result = "success", config = current_config() })
end

handlers["GET /fault"] = function()
  return reply(200, { result = "success", pending = faults.pending() })
end

handlers["POST /fault"] = function(req)
  local spec = body_object(req)
  if not spec then return bad("body must be a JSON object") end
  -- An array of fault specs queues several at once.
  local list = (#spec > 0) and spec or { spec }
  for _, s in ipairs(list) do
    local f, err = faults.add(s)
    if not f then return bad(err) end
  end
  return reply(200, { result = "success", pending = faults.pending() })
end

handlers["DELETE /fault"] = function()
  faults.reset()
  return reply(200, { result = "success" })
end

handlers["POST /data"] = function(req)
  local spec = body_object(req)
  if not spec then return bad("body must be a JSON object") end
  for kind, n in pairs(spec) do
    local ok, err = store.generate(kind, n)
    if not ok then return bad(err) end
  end
  return reply(200, { result = "success" })
end

handlers["GET /log"] = function()
  return util.send(200, recorder.encode(), { ["Content-Type"] = util.JSON_TYPE })
end

handlers["DELETE /log"] = function()
  recorder.clear()
  return reply(200, { result = "success" })
end

handlers["GET /stats"] = function()
  return reply(200, util.merge(util.merge(planado.stats(), scenarios.stats()), {
    requests = recorder.requests,
    rate_violations = ratelimit.state.violations,
    -- the shortest time between two requests the rate check accepted
    rate_min_gap = ratelimit.state.min_gap or json.null,
    latency_delayed_connections = latency.state.delayed,
    quota_used = ratelimit.state.quota_used,
    quota_remaining = ratelimit.state.quota and ratelimit.state.quota.remaining or json.null,
    log_entries = #recorder.entries,
    xml_logins = xmlapi.logins,
    xml_login_failures = xmlapi.login_failures,
    -- REST requests per operation ("GET /customfield/task"), since the reset
    rest_operations = rest.operations,
  }))
end

-- POST /_sandbox/xml/sign {"xml":"<request ...>","key":"..."}: the string
-- and MD5 of the Planfix XML request signature (Planfix's XML API documentation). The key
-- defaults to the sandbox private key; a <signature> in the XML is skipped.
handlers["POST /xml/sign"] = function(req)
  local b = body_object(req)
  if not b or type(b.xml) ~= "string" then return bad("body must be {\"xml\":\"...\",\"key\":\"...\"}") end
  if b.key ~= nil and type(b.key) ~= "string" then return bad("key must be a string") end
  local root, err = xml.parse(b.xml)
  if not root then return bad("invalid XML: " .. tostring(err)) end
  local md5, s = xml.signature(root, b.key or xmlapi.config.private_key)
  return reply(200, { result = "success", string = s, md5 = md5 })
end

handlers["POST /xml/expire_sessions"] = function()
  return reply(200, { result = "success", expired = xmlapi.expire_sessions() })
end

handlers["GET /xml/sessions"] = function()
  return reply(200, { result = "success", sessions = xmlapi.session_list() })
end

-- GET /_sandbox/store/<collection>[/<id>]: raw internal records (incl.
-- "_" fields such as _history with the silent flag, _cf, _files), for
-- asserting side effects. File contents are given as content_base64.
local function inspect(value)
  local v = util.deepcopy(value)
  if type(v) == "table" and type(v.content) == "string" then
    v.content_base64 = ngx.encode_base64(v.content)
    v.content = nil
  end
  return v
end

local function store_view(path)
  local coll_name, id = path:match("^/store/([%w_]+)/?(.*)$")
  local coll = coll_name and store.db[coll_name]
  if type(coll) ~= "table" then return reply(404, { result = "fail", error = "unknown collection" }) end
  if id == "" then
    local out = {}
    for k, v in pairs(coll) do out[tostring(k)] = inspect(v) end
    return reply(200, { result = "success", [coll_name] = out })
  end
  local rec = coll[tonumber(id) or id]
  if rec == nil then return reply(404, { result = "fail", error = "not found" }) end
  return reply(200, { result = "success", record = inspect(rec) })
end

function M.handle()
  local req = util.request("/_sandbox")
  local path = req.path:gsub("/+$", "")
  if req.method == "GET" and path:match("^/store/") then
    return store_view(path)
  end
  if path:match("^/planado/") and planado.control(req, path) then
    return
  end
  if path:match("^/planfix/") and (scenarios.control(req, path) or fields_control.control(req, path)) then
    return
  end
  local h = handlers[req.method .. " " .. path]
  if not h then
    return reply(404, { result = "fail", error = "unknown control endpoint " .. req.method .. " " .. req.path })
  end
  return h(req)
end

return M
