-- ensure_worker.lua: one process of spec/17's race. It makes a Planado client on the sandbox, says
-- it is ready, waits for the go file, then ensures <collection> <external_id>; prints one line of
-- JSON: the uuid it got, whether it created it, or its error. Before its create is sent, a worker
-- waits until every worker has come to its create (a request hook, marks in <dir>): so every
-- lookup has missed before any create, however the machine's load spreads the workers.
--   lua ensure_worker.lua <dir> <worker number> <collection> <external_id> <workers>
local core = require "planapi.core"
local sandbox = require "sandbox"
local workers = require "workers"

local dir, me, collection, external_id, count = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5])

local FIELDS = {
  jobs = { description = "raced" },
  clients = { organization = true, organization_name = "Raced Ltd" },
  sites = { name = "Raced site" },
}

local waited = false
local function before_create(ev)
  if ev.method ~= "POST" or waited then return end
  waited = true
  workers.arrive(dir, "create", me)
  workers.wait_all(dir, "create", count)
end

local pd = sandbox.planado { real_time = true, timeout = 10, hooks = { request = before_create } }
workers.ready_then_go(dir, me)
local obj, meta = pd[collection]:ensure(external_id, FIELDS[collection])
if obj then
  io.write(core.json_encode { uuid = obj.uuid, created = meta.created, external_id = obj.external_id }, "\n")
else
  io.write(core.json_encode { error = tostring(meta) }, "\n")
end
pd:close()
