-- The OpenResty gateway (examples/openresty, started by its run script)
-- in front of the sandbox, for the specs that drive a real nginx with
-- planapi inside (spec/60, spec/55): make one, start it, send it raw HTTP
-- requests all at once, read what reached the sandbox, stop it.
--
--   local gateway = require "gateway"
--   local gw = gateway.new { workers = 1, limiter = "redis://...", include = function(gw) ... end }
--   gateway.start(gw); gateway.http_many(gw.port, { { method =, path = }, ... }); gateway.stop(gw)
--
-- gateway.available is false without luasocket (the specs then pend).
local sandbox = require "sandbox"
local portable = require "portable"

local execute, read_file, rmtree = portable.execute, portable.read_file, portable.rmtree

local M = {}

M.available = pcall(require, "socket")
M.free_port = portable.free_port

if M.available then
  M.http_many = require("http_many")
end

--- One request: its result (see spec/helpers/http_many.lua).
function M.http(port, method, path, headers, body)
  return M.http_many(port, { { method = method, path = path, headers = headers, body = body } })[1]
end

--- examples/openresty/run's settings with the sandbox behind them; start(gw)
-- runs it. opts: workers, limiter (GATEWAY_LIMITER), webhook_secret,
-- include(gw) -> the path of more http-level configuration (written into
-- gw.dir), or nil; env: more of run's settings (name -> value). Returns
-- the gateway { dir, port, env }.
function M.new(opts)
  local env = sandbox.env()
  local gw = { dir = portable.tmpdir(), port = M.free_port() }
  local vars = {
    GATEWAY_DIR = gw.dir, GATEWAY_PORT = gw.port, GATEWAY_WORKERS = opts.workers,
    GATEWAY_CA_FILE = env.ca_file, GATEWAY_INCLUDE = opts.include and opts.include(gw) or "",
    GATEWAY_LIMITER = opts.limiter or "",
    PLANFIX_BASE_URL = ("https://localhost:%d/rest/"):format(env.https_port), PLANFIX_TOKEN = sandbox.TOKEN,
    PLANADO_URL = ("https://localhost:%d/planado/v2/"):format(env.https_port),
    PLANADO_API_KEY = sandbox.PLANADO_KEY, PLANADO_WEBHOOK_SECRET = opts.webhook_secret or "",
  }
  for k, v in pairs(opts.env or {}) do vars[k] = v end
  local words = {}
  for k, v in pairs(vars) do words[#words + 1] = ("%s='%s'"):format(k, tostring(v)) end
  gw.env = "env " .. table.concat(words, " ")
  return gw
end

function M.start(gw)
  assert(execute "make --no-print-directory -s LUA=luajit > /dev/null", "make LUA=luajit failed")
  gw.started = execute(gw.env .. " examples/openresty/run start > " .. gw.dir .. "/run.log 2>&1")
  assert(gw.started, "the gateway did not start: " .. tostring(read_file(gw.dir .. "/run.log"))
    .. tostring(read_file(gw.dir .. "/error.log")))
  return gw
end

function M.stop(gw)
  if not gw then return end
  execute(gw.env .. " examples/openresty/run stop > /dev/null 2>&1")
  -- Whatever happened to the script: the master is ours, by its pid file.
  local pid = tonumber(read_file(gw.dir .. "/nginx.pid") or "")
  if pid then execute(("kill -KILL %d 2>/dev/null"):format(pid)) end
  -- The gateway's logs hold the library's lines from inside nginx: the
  -- secret scan reads them before they go.
  for _, name in ipairs { "error.log", "access.log", "run.log" } do
    require("journal").output(read_file(gw.dir .. "/" .. name))
  end
  rmtree(gw.dir)
end

--- What reached the sandbox for kind ("rest", "planado"), its uri matching pattern when given.
function M.log_of(kind, pattern)
  local out = {}
  for _, e in ipairs(sandbox.log_of(kind)) do
    if not pattern or (e.uri or ""):find(pattern) then out[#out + 1] = e end
  end
  return out
end

function M.header_of(entry, name)
  local v = entry.headers[name]
  if type(v) == "table" then v = v[1] end
  return v
end

-- 8 tasks at once on 4 workers, Planfix enforcing 1 request a second and
-- Planado its leaky bucket: every answer distinct, nothing refused.
function M.rush(gw)
  local list = {}
  for i = 1, 8 do list[i] = { method = "POST", path = ("/tasks/%d/to-planado"):format((i - 1) % 7 + 1) } end
  local r = M.http_many(gw.port, list)
  local workers, n = {}, 0
  for _, it in ipairs(r) do
    local w = it.headers["x-gateway-worker"]
    if w and not workers[w] then workers[w], n = true, n + 1 end
  end
  return r, n
end

return M
