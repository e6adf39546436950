-- percall_planapi.lua: planapi's side of bench/percall.lua. One client of
-- the API, used the way a script uses it (the public call, pacing on with the
-- local limiter at a rate the sandbox never reaches, the retry policy, the
-- answer checked and decoded into Lua tables), over keep-alive.
--   lua5.4 bench/percall_planapi.lua API CALLS [ARG]     (or luajit, see percall.lua)
-- API: xml (task.getList, pageSize 100), rest (get-task-list, pageSize 100,
-- the fields in bench/percall.lua), planado (jobs:get ARG). The sandbox's
-- connection facts come from its env.lua (PLANAPI_SANDBOX_DIR).
-- Prints "cpu_us <CPU microseconds per call> wall_us <...> bytes <answer size>"
-- (os.clock: this process's CPU time).
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv "PLANAPI_CPATH" or "./?.so") .. ";" .. package.cpath
local planapi = require "planapi"
local core = require "planapi.core"

local api, calls, extra = arg[1], tonumber(arg[2]), arg[3]
local env = dofile((os.getenv "PLANAPI_SANDBOX_DIR" or "sandbox/.run") .. "/env.lua")
local WARMUP = 3
local FIELDS = os.getenv "PLANAPI_BENCH_FIELDS"
local rate = { rate = 100000, per = 1, margin = 0 }

local one, size
if api == "xml" then
  local xml = planapi.planfix_xml { url = env.xml_url, account = "sandbox", api_key = "sandbox-api-key",
    token = "sandbox-xml-token", ca_file = env.ca_file, rate = rate }
  one = function()
    local r = assert(xml:call("task.getList", { pageCurrent = 1, pageSize = 100 }))
    assert(#r.tasks == 100)
  end
elseif api == "rest" then
  local rest = planapi.planfix_rest { base_url = env.rest_url, token = "sandbox-token", ca_file = env.ca_file,
    rate = rate }
  one = function()
    local r = assert(rest:call("get-task-list", { offset = 0, pageSize = 100, fields = FIELDS }))
    assert(#r.tasks == 100)
  end
elseif api == "planado" then
  local pd = planapi.planado { url = env.planado_url, api_key = "sandbox-planado-key", ca_file = env.ca_file,
    rate = rate }
  one = function()
    local job = assert(pd.jobs:get(extra))
    assert(job.uuid == extra)
  end
else
  error("API is xml, rest or planado")
end

local c0, w0
for i = 1, WARMUP + calls do
  if i == WARMUP + 1 then c0, w0 = os.clock(), core.monotime() end
  one()
end
print(("cpu_us %.1f wall_us %.1f"):format((os.clock() - c0) / calls * 1e6, (core.monotime() - w0) / calls * 1e6))
