-- Injected transport and server faults for API requests (under /rest/, /xml/
-- and /planado/).
--
-- POST /_sandbox/fault queues a fault; the next `count` API requests whose
-- path (incl. the "/rest" prefix) contains `path` get it, in FIFO order of
-- the queued faults. Faults act before authentication, rate limiting and
-- quota, like a failing proxy in front of the service, and do not consume
-- quota. Only "slow", "late" and "reset_after" let the request go on to the
-- normal handling ("slow" waits before it, "late" after it, before the
-- answer; "reset_after" then drops the connection instead of answering).
local json = require("sandbox.json")
local util = require("sandbox.util")

local M = {}

M.queue = {}
local given = setmetatable({}, { __mode = "k" })

function M.reset()
  M.queue = {}
end

local MODES = {
  status = true, reset = true, slow = true, truncate = true,
  malformed = true, html = true, oversize = true, code = true,
  rate_text = true, -- Planado's quirk: HTTP 200, text/plain "Rate Limit Exceeded"
  reset_after = true, -- the request is carried out, then the connection drops without an answer
  redirect = true,    -- a 3xx with a Location, as a misconfigured proxy or a moved API would send
  late = true,        -- the request is carried out at once, its answer is sent `delay` seconds later
  echo = true,        -- an error page that echoes the request (its headers and body), as debugging proxies do
}

local ECHO_FORMATS = { html = true, text = true, json = true, xml = true }
local ECHO_ESCAPES = { none = true, json = true, url = true, xml = true }

-- Error texts for the "code" mode, from the Planfix error table.
local CODE_TEXT = {
  [0] = "Rest API error", [1] = "Access denied, unknown token", [2] = "Token not active",
  [3] = "Object is being modified", [5] = "Scope denied, method not allowed",
  [6] = "Access denied", [10] = "Account blocked", [11] = "Account frozen",
  [16] = "User inactive", [20] = "Subscription not paid", [21] = "API not available on a free account",
  [22] = "Daily request limit exceeded", [30] = "Invalid JSON", [40] = "Required parameter missing",
  [41] = "Invalid parameter value",
}

-- Validates and queues a fault spec. Returns the normalised fault or nil, err.
function M.add(spec)
  if type(spec) ~= "table" then return nil, "fault must be a JSON object" end
  local f = { mode = spec.mode }
  if not MODES[f.mode] then return nil, "unknown fault mode '" .. tostring(spec.mode) .. "'" end
  f.count = util.to_int(spec.count or 1)
  if not f.count or f.count < 1 then return nil, "count must be an integer >= 1" end
  if spec.path ~= nil and type(spec.path) ~= "string" then return nil, "path must be a string" end
  f.path = spec.path
  if spec.xml_method ~= nil and type(spec.xml_method) ~= "string" then return nil, "xml_method must be a string" end
  f.xml_method = spec.xml_method
  if spec.method ~= nil and (type(spec.method) ~= "string" or not spec.method:match("^%u+$")) then
    return nil, "method must be an upper-case HTTP method, e.g. \"POST\""
  end
  f.method = spec.method
  -- Whether code/error were given (the XML answers have their own defaults).
  given[f] = { code = spec.code ~= nil, error = type(spec.error) == "string" }
  if f.mode == "status" then
    f.status = util.to_int(spec.status or 503)
    if not f.status or f.status < 100 or f.status > 599 then return nil, "status must be 100..599" end
    f.code = util.to_int(spec.code or 0) or 0
    f.error = type(spec.error) == "string" and spec.error or "Rest API error"
  elseif f.mode == "slow" or f.mode == "late" then
    f.delay = util.to_number(spec.delay or 2.0)
    if not f.delay or f.delay < 0 or f.delay > 300 then return nil, "delay must be 0..300 seconds" end
  elseif f.mode == "oversize" then
    f.size = util.to_int(spec.size or 8 * 1024 * 1024)
    if not f.size or f.size < 64 or f.size > 256 * 1024 * 1024 then return nil, "size must be 64..268435456" end
  elseif f.mode == "code" then
    f.code = util.to_int(spec.code or 3)
    if not f.code then return nil, "code must be an integer" end
    f.error = type(spec.error) == "string" and spec.error or CODE_TEXT[f.code] or "Rest API error"
    f.status = util.to_int(spec.status or 200)
    if not f.status or f.status < 200 or f.status > 299 then return nil, "status for mode 'code' must be 2xx" end
  elseif f.mode == "truncate" then
    f.size = util.to_int(spec.size) -- declared Content-Length, optional
  elseif f.mode == "html" then
    f.status = util.to_int(spec.status or 502)
    if not f.status or f.status < 200 or f.status > 599 then return nil, "status must be 200..599" end
  elseif f.mode == "echo" then
    f.status = util.to_int(spec.status or 502)
    if not f.status or f.status < 200 or f.status > 599 then return nil, "status must be 200..599" end
    f.format = spec.format or "html"
    if not ECHO_FORMATS[f.format] then return nil, "format must be html, text, json or xml" end
    f.escape = spec.escape or "none"
    if not ECHO_ESCAPES[f.escape] then return nil, "escape must be none, json, url or xml" end
    f.pad = util.to_int(spec.pad or 0)
    if not f.pad or f.pad < 0 or f.pad > 1048576 then return nil, "pad must be 0..1048576" end
    if spec.first ~= nil and type(spec.first) ~= "string" then return nil, "first must be a header name" end
    f.first = spec.first
  elseif f.mode == "redirect" then
    f.status = util.to_int(spec.status or 302)
    if not f.status or f.status < 300 or f.status > 399 then return nil, "status for mode 'redirect' must be 3xx" end
    if type(spec.location) ~= "string" or spec.location == "" then return nil, "redirect needs a location" end
    f.location = spec.location
  end
  M.queue[#M.queue + 1] = f
  return f
end

-- Takes one use of the first fault matching full_path and the HTTP method
-- (and, for the XML API, the request's method attribute), or nil. A fault
-- with xml_method only matches XML requests calling that method.
function M.take(full_path, http_method, xml_method)
  for i, f in ipairs(M.queue) do
    if (not f.path or full_path:find(f.path, 1, true))
      and (not f.method or f.method == http_method)
      and (not f.xml_method or f.xml_method == xml_method) then
      f.count = f.count - 1
      if f.count <= 0 then table.remove(M.queue, i) end
      return f
    end
  end
  return nil
end

function M.pending()
  local out = json.array()
  for _, f in ipairs(M.queue) do out[#out + 1] = f end
  return out
end

local HTML_502 = [[<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
]]

-- Writes an HTTP response by hand on the raw client socket, declaring a
-- Content-Length larger than what is sent, then closes the connection.
local function send_truncated(f, flavour)
  local body = '{"result":"success","tasks":[{"id":1,"name":"Prepare quarterly rep'
  local ctype = util.JSON_TYPE
  if flavour == "planado" then
    body = '{"job":{"uuid":"00000001-0000-4000-8000-000000000001","description":"Install the rou'
  elseif flavour == "xml" then
    body = '<?xml version="1.0" encoding="UTF-8"?><response status="ok"><tasks count="1" totalCount="1"><task><id>1</id><title>Prepare quarterly rep'
    ctype = "application/xml; charset=utf-8"
  end
  local declared = f.size and f.size > #body and f.size or #body * 4
  local sock, err = ngx.req.socket(true)
  if not sock then
    ngx.log(ngx.ERR, "truncate fault: no raw socket: ", err)
    return ngx.exit(444)
  end
  sock:send("HTTP/1.1 200 OK\r\n"
    .. "Content-Type: " .. ctype .. "\r\n"
    .. "Content-Length: " .. declared .. "\r\n"
    .. "Connection: close\r\n\r\n"
    .. body)
  return ngx.exit(444)
end

-- The XML API flavour of the fault answers (see apply).
local function apply_xml(f, record)
  local xml = require("sandbox.xml")
  local mode = f.mode
  local g = given[f] or {}
  local XML_TYPE = { ["Content-Type"] = xml.CONTENT_TYPE }
  if mode == "status" then
    record(f.status)
    -- Without an explicit code the body is an error document with no
    -- <code>: what a failing front end might say, not a Planfix code.
    local code = g.code and xml.code_text(f.code) or nil
    local msg = g.error and f.error or xml.message(code) or "Service error"
    return util.send(f.status, xml.error_document(code, msg), XML_TYPE)
  elseif mode == "malformed" then
    record(200)
    return util.send(200, xml.DECL .. '<response status="ok"><task><id>1</id><title>Broken', XML_TYPE)
  elseif mode == "oversize" then
    record(200)
    local head, tail = xml.DECL .. '<response status="ok"><padding>', "</padding></response>"
    return util.send(200, head .. string.rep("x", f.size - #head - #tail) .. tail, XML_TYPE)
  elseif mode == "code" then
    record(f.status)
    local code = g.code and xml.code_text(f.code) or "3014"
    local msg = g.error and f.error or xml.message(code) or "Error"
    return util.send(f.status, xml.error_document(code, msg), XML_TYPE)
  end
  return nil
end

-- The Planado API flavour: its error body is {"errors":[{"message":…}]}, and
-- success bodies have no "result" key.
local function apply_planado(f, record)
  local mode = f.mode
  local g = given[f] or {}
  local JSON = { ["Content-Type"] = util.JSON_TYPE }
  if mode == "status" then
    record(f.status)
    local msg = g.error and f.error or "Service temporarily unavailable"
    return util.send_json(f.status, { errors = { { message = msg } } })
  elseif mode == "malformed" then
    record(200)
    return util.send(200, '{"jobs":[{"uuid":"00000001-0000-4000-8000-000000000001","status":"pos', JSON)
  elseif mode == "oversize" then
    record(200)
    local head, tail = '{"padding":"', '"}'
    return util.send(200, head .. string.rep("x", f.size - #head - #tail) .. tail, JSON)
  elseif mode == "code" then
    record(f.status)
    return util.send_json(f.status, { errors = { { message = f.error, code = f.code } } })
  end
  return nil
end

-- The request as an echoing proxy shows it: the request line and headers as
-- received, then the body; the header `first` (if any) on a line before them.
local function echo_text(f, req)
  local first = ""
  if f.first then
    local v = ngx.req.get_headers(0)[f.first:lower()]
    if type(v) == "table" then v = v[1] end
    if v then first = f.first .. ": " .. v .. "\r\n" end
  end
  return first .. (ngx.req.raw_header() or "") .. ((req and req.body) or "")
end

local ECHO_ESCAPE = {
  none = function(s) return s end,
  json = function(s) return json.encode(s):sub(2, -2) end,
  url = function(s) return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)) end,
  xml = function(s)
    return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }))
  end,
}

-- The echo fault's answer: `pad` filler bytes before the echo (so a spec can
-- put a client's cut at any offset of it), in `format`: for json and xml,
-- inside the error document's message, which stays a valid document.
local function send_echo(f, req)
  local echo = echo_text(f, req)
  local pad = ("x"):rep(f.pad)
  if f.format == "json" then
    return util.send(f.status, json.encode { result = "fail", code = 0, error = pad .. echo,
      errors = json.array { { message = pad .. echo } } }, { ["Content-Type"] = util.JSON_TYPE })
  elseif f.format == "xml" then
    local xml = require("sandbox.xml")
    return util.send(f.status, xml.error_document(nil, pad .. echo), { ["Content-Type"] = xml.CONTENT_TYPE })
  end
  local text = ECHO_ESCAPE[f.escape](echo)
  if f.format == "text" then
    return util.send(f.status, pad .. text, { ["Content-Type"] = "text/plain" })
  end
  return util.send(f.status, pad .. "<pre>" .. text .. "</pre>\n" .. HTML_502, { ["Content-Type"] = "text/html" })
end

-- Applies a (non-slow) fault to the current request and ends it. `record` is
-- called with the status answered before anything is sent. flavour "xml"
-- gives XML bodies (the Planfix XML API) where the REST answer is JSON;
-- flavour "planado" gives Planado-shaped JSON.
function M.apply(f, record, flavour, req)
  local mode = f.mode
  if mode == "echo" then
    record(f.status)
    return send_echo(f, req)
  end
  if flavour == "xml" and (mode == "status" or mode == "malformed" or mode == "oversize" or mode == "code") then
    return apply_xml(f, record)
  end
  if flavour == "planado" and (mode == "status" or mode == "malformed" or mode == "oversize" or mode == "code") then
    return apply_planado(f, record)
  end
  if mode == "rate_text" then
    record(200)
    return util.send(200, "Rate Limit Exceeded", { ["Content-Type"] = "text/plain" })
  end
  if mode == "status" then
    record(f.status)
    return util.send_json(f.status, { result = "fail", code = f.code, error = f.error })
  elseif mode == "reset" then
    record(444)
    return ngx.exit(444)
  elseif mode == "truncate" then
    record(200)
    return send_truncated(f, flavour)
  elseif mode == "malformed" then
    record(200)
    return util.send(200, '{"result":"success","tasks":[{"id":1,"name":"Broken"},', { ["Content-Type"] = util.JSON_TYPE })
  elseif mode == "html" then
    record(f.status)
    return util.send(f.status, HTML_502, { ["Content-Type"] = "text/html" })
  elseif mode == "redirect" then
    record(f.status)
    return util.send(f.status, "Moved\n", { ["Content-Type"] = "text/plain", Location = f.location })
  elseif mode == "oversize" then
    record(200)
    local head, tail = '{"result":"success","padding":"', '"}'
    local pad = f.size - #head - #tail
    return util.send(200, head .. string.rep("x", pad) .. tail, { ["Content-Type"] = util.JSON_TYPE })
  elseif mode == "code" then
    record(f.status)
    return util.send_json(f.status, { result = "fail", code = f.code, error = f.error })
  end
  error("faults.apply: unexpected mode " .. tostring(mode))
end

return M
