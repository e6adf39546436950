-- Specs' access to the local sandbox (sandbox/README.md): its ports and CA,
-- its control API, ready-made clients pointed at it, and a fake clock.
local core = require "planapi.core"
local planapi = require "planapi"
local portable = require "portable"

local M = {}

-- The default pacing scope (a file in the user's runtime dir) of every
-- client the specs make lives in this sandbox's run dir: other sandboxes
-- on this host run their own specs at the same time.
require("planapi.limiter").runtime_dir = (os.getenv "PLANAPI_SANDBOX_DIR" or "sandbox/.run") .. "/runtime"

M.TOKEN = "sandbox-token"
M.PLANADO_KEY = "sandbox-planado-key"
M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

local function run_dir()
  return os.getenv "PLANAPI_SANDBOX_DIR" or "sandbox/.run"
end

local env
--- The sandbox's env.lua; starts the sandbox when it is not running
-- (make test starts it once for the whole run).
function M.env()
  if env then return env end
  local path = run_dir() .. "/env.lua"
  local chunk = loadfile(path)
  if not chunk or not portable.execute "sandbox/run status > /dev/null 2>&1" then
    assert(portable.execute "sandbox/run start > /dev/null", "cannot start the sandbox")
    chunk = assert(loadfile(path))
  end
  env = chunk()
  return env
end

function M.https_url(path, port)
  return ("https://127.0.0.1:%d/%s"):format(port or M.env().https_port, path or "")
end

function M.http_url(path)
  return ("http://127.0.0.1:%d/%s"):format(M.env().http_port, path or "")
end

local control_client
local function control()
  control_client = control_client or core.client {
    base_url = M.http_url "_sandbox/", allow_http = true, timeout = 30,
  }
  return control_client
end

--- Call the control API: method, path under /_sandbox/, optional JSON body.
function M.control(method, path, body)
  local c = control()
  local res, err = c:perform(c:prepare { method = method, path = path, body = body })
  assert(res, err and tostring(err))
  assert(res.status < 300, ("sandbox control %s %s answered %d: %s"):format(method, path, res.status, res.body))
  return (c:decode(res, "keep")) -- the sandbox's state exactly, nulls included
end

--- The same without the status check: status, decoded body (for a 504 that
-- a spec expects, such as a flush that times out on purpose).
function M.control_status(method, path, body)
  local c = control()
  local res, err = c:perform(c:prepare { method = method, path = path, body = body })
  assert(res, err and tostring(err))
  return res.status, (c:decode(res, "keep"))
end

function M.reset() return M.control("POST", "reset") end
function M.config(t) return M.control("POST", "config", t) end
function M.fault(t) return M.control("POST", "fault", t) end
function M.data(t) return M.control("POST", "data", t) end
function M.stats() return M.control("GET", "stats") end
function M.clear_log() return M.control("DELETE", "log") end
function M.log() return M.control("GET", "log") end

--- Custom fields, templates and directories (sandbox/README.md, "Custom
-- fields, templates and directories"): seed them; each returns the ids.
--   sandbox.fields { task = { { name = "Region", type = 8, enumValues = { "N", "S" } } } }
--   sandbox.templates { task = { { name = "Lead", fields = { 106 } } } }
--   sandbox.directories { { name = "Cities", fields = { { name = "Name", type = 0 } }, entries = 250 } }
function M.fields(t) return M.control("POST", "planfix/fields", t).ids end
function M.templates(t) return M.control("POST", "planfix/templates", t).ids end
function M.directories(list) return M.control("POST", "planfix/directories", { directories = list }).ids end

--- REST requests the sandbox handled per operation since the last reset,
-- keyed "METHOD /spec/path" ("GET /customfield/task"); or the count of one.
function M.operations(name)
  local counts = M.stats().rest_operations or {}
  if name then return counts[name] or 0 end
  return counts
end

--- Log entries of one kind ("rest", "xml", "planado", "record").
function M.log_of(kind)
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == kind then out[#out + 1] = e end
  end
  return out
end

function M.xml_log() return M.log_of "xml" end

--- Planado records of a collection ("jobs", "clients", "sites") whose external_id is tag, straight
-- from the store.
function M.planado_stored(collection, tag)
  local out = {}
  local all = M.control("GET", "store/planado_" .. collection)["planado_" .. collection]
  for _, rec in pairs(all) do
    if type(rec) == "table" and rec.external_id == tag then out[#out + 1] = rec end
  end
  return out
end

--- The POSTs to a Planado collection and the lookups of tag (GET <collection>/<tag>), as the
-- sandbox logged them.
function M.planado_requests(collection, tag)
  local posts, lookups = {}, {}
  for _, e in ipairs(M.log_of "planado") do
    if e.method == "POST" and e.path == "/" .. collection then posts[#posts + 1] = e end
    if e.method == "GET" and e.path == "/" .. collection .. "/" .. tag then lookups[#lookups + 1] = e end
  end
  return posts, lookups
end

--- A fake monotonic clock and a sleep that only advances it: specs of
-- pacing and backoff run instantly and see every wait.
function M.fake_time(start)
  local t = { now = start or 1000, sleeps = {} }
  function t.clock() return t.now end
  function t.sleep(s)
    t.sleeps[#t.sleeps + 1] = s
    t.now = t.now + s
  end
  return t
end

-- Client options for the sandbox: defaults, then the spec's own. By
-- default no pacing (the sandbox enforces no rate unless a spec turns it
-- on) and retries that wait on a fake clock; real_time = true keeps the
-- real clock and sleep, and a value "nil" removes a default (rate = "nil":
-- the API's own rate).
local function client_options(defaults, opts)
  local o = { rate = false, retry = { attempts = 3, random = function() return 0 end } }
  for k, v in pairs(defaults) do o[k] = v end
  for k, v in pairs(opts or {}) do
    if k == "real_time" then
      -- not a client option
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil and not (opts and opts.real_time) then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return o
end

--- A Planfix REST client on the sandbox.
function M.rest(opts)
  return planapi.planfix_rest(client_options({
    base_url = M.https_url "rest/", token = M.TOKEN, ca_file = M.env().ca_file }, opts))
end

--- A Planfix XML client on the sandbox: token mode unless `login = true`
-- (then the login mode; a string sets another login name).
function M.xml(opts)
  local defaults = { url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file }
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  if o.login then
    defaults.login = type(o.login) == "string" and o.login or M.XML.login
    defaults.password = M.XML.password
  else
    defaults.token = M.XML.token
  end
  o.login = nil
  return planapi.planfix_xml(client_options(defaults, o))
end

--- A Planado client on the sandbox (strict, as the specs want it).
function M.planado(opts)
  return planapi.planado(client_options({
    url = M.https_url "planado/v2/", api_key = M.PLANADO_KEY, ca_file = M.env().ca_file, strict = true }, opts))
end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- The environment prefix that runs bin/planapi against this sandbox for all
-- three APIs: "env -i PATH=... VAR='value' ...". extra adds variables
-- (false removes one).
function M.cli_env(extra)
  local where = M.env()
  local vars = {
    PLANFIX_REST_URL = M.https_url "rest/", PLANFIX_TOKEN = M.TOKEN,
    PLANFIX_ACCOUNT = "sandbox", PLANFIX_API_KEY = M.XML.api_key, PLANFIX_XML_TOKEN = M.XML.token,
    PLANFIX_XML_URL = M.https_url "xml/",
    PLANADO_URL = M.https_url "planado/v2/", PLANADO_API_KEY = M.PLANADO_KEY,
    PLANAPI_CA_FILE = where.ca_file, HOME = "/nonexistent",
  }
  for k, v in pairs(extra or {}) do vars[k] = v ~= false and v or nil end
  local parts = {}
  for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  table.sort(parts)
  return "env -i PATH=\"$PATH\" " .. table.concat(parts, " ")
end

return M
