-- haproxy_probe.lua: loaded into spec/65's HAProxy beside the example
-- (lua-load-per-thread), a service that sends one request through
-- planapi's haproxy transport and answers what came back, as JSON:
--   GET /probe?url=<url>&route=<address of its TLS section>&max_body=<n>&timeout=<s>&auth=1
--   -> { status, size, location, kind, message, request_sent, time, transport }
-- luacheck: read globals core (HAProxy's API, a global inside HAProxy)
local planapi = require "planapi"
local Haproxy = require "planapi.transport.haproxy"

local function query(qs)
  local out = {}
  for k, v in (qs or ""):gmatch "([^&=]+)=([^&]*)" do
    out[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return out
end

local function probe(q)
  if q.route then Haproxy.route(q.url:match "^https://[^/]+", q.route) end
  local client = planapi.core.client {
    base_url = q.url, max_body = tonumber(q.max_body), timeout = tonumber(q.timeout) or 5,
    secrets = { "probe-secret-token" },
  }
  local send = Haproxy.new(client)
  local headers = q.auth and { Authorization = "Bearer probe-secret-token" } or nil
  local res, err = send { method = q.method or "GET", url = q.url, headers = headers }
  if res then
    return { status = res.status, size = #res.body, location = res.headers.location, time = res.time }
  end
  return { kind = err.kind, message = tostring(err), request_sent = err.request_sent }
end

core.register_service("planapi_probe", "http", function(applet)
  local ok, out = pcall(probe, query(applet.qs))
  if not ok then out = { raised = tostring(out) } end
  local body = planapi.json.encode(out)
  applet:set_status(200)
  applet:add_header("content-length", tostring(#body))
  applet:start_response()
  applet:send(body)
end)
