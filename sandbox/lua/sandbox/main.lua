-- Entry point: nginx calls handle() for every request on every port and we
-- dispatch on the URL prefix:
--   /_sandbox/...        control API (sandbox.control)
--   /rest/...            emulated Planfix REST API (faults -> sandbox.rest)
--   /record/...          request recorder: logs anything, answers success
--   /xml/                emulated Planfix XML API (faults -> sandbox.xmlapi)
--   /planado/v2/...      emulated Planado API v2 (faults -> sandbox.planado)
--   /files-download/...  "presigned" file download URLs
local util = require("sandbox.util")
local recorder = require("sandbox.recorder")
local faults = require("sandbox.faults")
local rest = require("sandbox.rest")
local xmlapi = require("sandbox.xmlapi")
local planado = require("sandbox.planado")
local control = require("sandbox.control")

local M = {}

function M.init()
  -- Modules are loaded by the requires above; seed randomness for tokens.
  math.randomseed(os.time())
  if not require("sandbox.xml").available then
    ngx.log(ngx.WARN, "sandbox: ", require("sandbox.xml").MISSING, "; /xml/ answers 500")
  end
end

local function send_api(status, body, headers)
  if body == nil then
    return util.send(status, nil, headers)
  end
  return util.send_json(status, body, headers)
end

-- A fault taken for this request: true when it answered the request (the
-- handler stops there), false when the request goes on to its normal handling
-- ("slow" after its delay; "late", whose delay finish() waits out before the
-- answer; "reset_after", which finish() then leaves unanswered).
local function fault_answered(req, f, extra, kind)
  extra.fault = f.mode
  if f.mode == "reset_after" or f.mode == "late" then return false end
  if f.mode == "slow" then
    local generation = control.generation
    ngx.sleep(f.delay)
    -- A reset during the delay starts a new world: this request belongs to
    -- the old one, so it must not take a rate slot or appear in the new log.
    if control.generation ~= generation then
      ngx.exit(444)
      return true
    end
    return false
  end
  faults.apply(f, function(status) recorder.record(req, status, extra) end, kind, req)
  return true
end

-- Sends the answer, unless a "reset_after" fault says the connection drops
-- once the request has been carried out (and logged, with its real status).
-- A "late" answer is what the request found when it was carried out, sent
-- after the delay: a lookup that saw nothing yet still says so afterwards.
local function finish(f, send, ...)
  if f and f.mode == "reset_after" then return ngx.exit(444) end
  if f and f.mode == "late" then ngx.sleep(f.delay) end
  return send(...)
end

local function handle_rest()
  local req = util.request("/rest")
  req.kind = "rest"
  recorder.count()

  local extra = {}
  local f = faults.take(req.full_path, req.method)
  if f and fault_answered(req, f, extra) then return end

  local status, body, headers = rest.handle(req)
  recorder.record(req, status, f and extra or nil)
  return finish(f, send_api, status, body, headers)
end

local function handle_xml()
  local req = util.request("/xml")
  req.kind = "xml"
  recorder.count()
  -- Parsed first: the log wants the tree, and a fault may name the method.
  xmlapi.prepare(req)
  local extra = xmlapi.log_fields(req)

  local f = faults.take(req.full_path, req.method, req.xml_method)
  if f and fault_answered(req, f, extra, "xml") then return end

  local status, body, headers = xmlapi.handle(req)
  recorder.record(req, status, extra)
  return finish(f, util.send, status, body, headers)
end

local function handle_planado()
  local req = util.request("/planado/v2")
  req.kind = "planado"
  recorder.count()
  planado.count()
  local extra = planado.log_fields(req)

  local f = faults.take(req.full_path, req.method)
  if f and fault_answered(req, f, extra, "planado") then return end

  local status, body, headers, more = planado.handle(req)
  for k, v in pairs(more or {}) do extra[k] = v end
  recorder.record(req, status, extra)
  return finish(f, util.send, status, body, headers)
end

local function handle_record()
  local req = util.request("/record")
  req.kind = "record"
  recorder.count()
  recorder.record(req, 200)
  return util.send_json(200, { result = "success" })
end

local function dispatch()
  local uri = ngx.var.uri
  if uri:sub(1, 6) == "/rest/" or uri == "/rest" then
    return handle_rest()
  elseif uri:sub(1, 5) == "/xml/" or uri == "/xml" then
    return handle_xml()
  elseif uri:sub(1, 8) == "/record/" or uri == "/record" then
    return handle_record()
  elseif uri:sub(1, 9) == "/planado/" or uri == "/planado" then
    return handle_planado()
  elseif uri:sub(1, 10) == "/_sandbox/" or uri == "/_sandbox" then
    return control.handle()
  elseif uri:sub(1, 16) == "/files-download/" then
    -- Logged (kind "download") so specs can see which headers reached it.
    local req = util.request("")
    req.kind = "download"
    local status, body, headers = rest.download()
    recorder.record(req, status)
    return util.send(status, body, headers)
  end
  return util.send_json(404, { result = "fail", code = 0, error = "Not found: use /rest/, /xml/, /planado/v2/, /record/ or /_sandbox/" })
end

function M.handle()
  local ok, err = xpcall(dispatch, debug.traceback)
  if not ok then
    ngx.log(ngx.ERR, "sandbox: unhandled error: ", err)
    if not ngx.headers_sent then
      return util.send_json(500, { result = "fail", code = 0, error = "Sandbox internal error" })
    end
  end
end

return M
