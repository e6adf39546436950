-- Specs' access to the local sandbox (sandbox/README.md): its ports and CA,
-- its control API, ready-made clients pointed at it, and a fake clock.
local core = require "planapi.core"
local planapi = require "planapi"

local M = {}

M.TOKEN = "sandbox-token"

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
  if not chunk or os.execute "sandbox/run status > /dev/null 2>&1" ~= true then
    assert(os.execute "sandbox/run start > /dev/null", "cannot start the sandbox")
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
    base_url = M.http_url "_sandbox/", allow_http = true, timeout = 10,
  }
  return control_client
end

--- Call the control API: method, path under /_sandbox/, optional JSON body.
function M.control(method, path, body)
  local c = control()
  local res, err = c:perform(c:prepare { method = method, path = path, body = body })
  assert(res, err and tostring(err))
  assert(res.status < 300, ("sandbox control %s %s answered %d: %s"):format(method, path, res.status, res.body))
  return (c:decode(res))
end

function M.reset() M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

--- A Planfix XML client on the sandbox: token mode unless `login` is given
-- (then the login mode); the same pacing and retry defaults as M.rest.
function M.xml(opts)
  opts = opts or {}
  local o = {
    url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file, rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  if opts.login then
    o.login, o.password = M.XML.login, M.XML.password
  else
    o.token = M.XML.token
  end
  for k, v in pairs(opts) do
    if k == "login" then
      if type(v) == "string" then o.login = v end
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_xml(o)
end

--- Log entries of the XML endpoint.
function M.xml_log()
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == "xml" then out[#out + 1] = e end
  end
  return out
end

return M.control("POST", "reset") end
function M.config(t) M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

--- A Planfix XML client on the sandbox: token mode unless `login` is given
-- (then the login mode); the same pacing and retry defaults as M.rest.
function M.xml(opts)
  opts = opts or {}
  local o = {
    url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file, rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  if opts.login then
    o.login, o.password = M.XML.login, M.XML.password
  else
    o.token = M.XML.token
  end
  for k, v in pairs(opts) do
    if k == "login" then
      if type(v) == "string" then o.login = v end
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_xml(o)
end

--- Log entries of the XML endpoint.
function M.xml_log()
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == "xml" then out[#out + 1] = e end
  end
  return out
end

return M.control("POST", "config", t) end
function M.fault(t) M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

--- A Planfix XML client on the sandbox: token mode unless `login` is given
-- (then the login mode); the same pacing and retry defaults as M.rest.
function M.xml(opts)
  opts = opts or {}
  local o = {
    url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file, rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  if opts.login then
    o.login, o.password = M.XML.login, M.XML.password
  else
    o.token = M.XML.token
  end
  for k, v in pairs(opts) do
    if k == "login" then
      if type(v) == "string" then o.login = v end
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_xml(o)
end

--- Log entries of the XML endpoint.
function M.xml_log()
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == "xml" then out[#out + 1] = e end
  end
  return out
end

return M.control("POST", "fault", t) end
function M.data(t) M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

--- A Planfix XML client on the sandbox: token mode unless `login` is given
-- (then the login mode); the same pacing and retry defaults as M.rest.
function M.xml(opts)
  opts = opts or {}
  local o = {
    url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file, rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  if opts.login then
    o.login, o.password = M.XML.login, M.XML.password
  else
    o.token = M.XML.token
  end
  for k, v in pairs(opts) do
    if k == "login" then
      if type(v) == "string" then o.login = v end
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_xml(o)
end

--- Log entries of the XML endpoint.
function M.xml_log()
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == "xml" then out[#out + 1] = e end
  end
  return out
end

return M.control("POST", "data", t) end
function M.stats() M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

--- A Planfix XML client on the sandbox: token mode unless `login` is given
-- (then the login mode); the same pacing and retry defaults as M.rest.
function M.xml(opts)
  opts = opts or {}
  local o = {
    url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file, rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  if opts.login then
    o.login, o.password = M.XML.login, M.XML.password
  else
    o.token = M.XML.token
  end
  for k, v in pairs(opts) do
    if k == "login" then
      if type(v) == "string" then o.login = v end
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_xml(o)
end

--- Log entries of the XML endpoint.
function M.xml_log()
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == "xml" then out[#out + 1] = e end
  end
  return out
end

return M.control("GET", "stats") end
function M.clear_log() M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

--- A Planfix XML client on the sandbox: token mode unless `login` is given
-- (then the login mode); the same pacing and retry defaults as M.rest.
function M.xml(opts)
  opts = opts or {}
  local o = {
    url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file, rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  if opts.login then
    o.login, o.password = M.XML.login, M.XML.password
  else
    o.token = M.XML.token
  end
  for k, v in pairs(opts) do
    if k == "login" then
      if type(v) == "string" then o.login = v end
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_xml(o)
end

--- Log entries of the XML endpoint.
function M.xml_log()
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == "xml" then out[#out + 1] = e end
  end
  return out
end

return M.control("DELETE", "log") end
function M.log() M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

--- A Planfix XML client on the sandbox: token mode unless `login` is given
-- (then the login mode); the same pacing and retry defaults as M.rest.
function M.xml(opts)
  opts = opts or {}
  local o = {
    url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file, rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  if opts.login then
    o.login, o.password = M.XML.login, M.XML.password
  else
    o.token = M.XML.token
  end
  for k, v in pairs(opts) do
    if k == "login" then
      if type(v) == "string" then o.login = v end
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_xml(o)
end

--- Log entries of the XML endpoint.
function M.xml_log()
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == "xml" then out[#out + 1] = e end
  end
  return out
end

return M.control("GET", "log") end

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

--- A Planfix REST client on the sandbox. By default no pacing (the
-- sandbox enforces no rate unless a spec turns it on) and retries that
-- wait on a fake clock; real_time = true keeps the real clock and sleep,
-- and a value "nil" removes a default (rate = "nil": the API's own rate).
function M.rest(opts)
  opts = opts or {}
  local real_time = opts.real_time
  local o = {
    base_url = M.https_url "rest/",
    token = M.TOKEN,
    ca_file = M.env().ca_file,
    rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  for k, v in pairs(opts) do
    if k == "real_time" then
      -- not a client option
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil and not real_time then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_rest(o)
end

M.XML = {
  account = "sandbox", api_key = "sandbox-api-key", token = "sandbox-xml-token",
  login = "robot", password = "robot-pass", private_key = "sandbox-private-key",
}

--- A Planfix XML client on the sandbox: token mode unless `login` is given
-- (then the login mode); the same pacing and retry defaults as M.rest.
function M.xml(opts)
  opts = opts or {}
  local o = {
    url = M.https_url "xml/", account = M.XML.account, api_key = M.XML.api_key,
    ca_file = M.env().ca_file, rate = false,
    retry = { attempts = 3, random = function() return 0 end },
  }
  if opts.login then
    o.login, o.password = M.XML.login, M.XML.password
  else
    o.token = M.XML.token
  end
  for k, v in pairs(opts) do
    if k == "login" then
      if type(v) == "string" then o.login = v end
    elseif v == "nil" then
      o[k] = nil
    else
      o[k] = v
    end
  end
  if o.sleep == nil then
    local t = M.fake_time()
    o.clock, o.sleep = t.clock, t.sleep
  end
  return planapi.planfix_xml(o)
end

--- Log entries of the XML endpoint.
function M.xml_log()
  local out = {}
  for _, e in ipairs(M.log()) do
    if e.kind == "xml" then out[#out + 1] = e end
  end
  return out
end

return M
