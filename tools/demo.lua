-- demo.lua: what `make demo` runs. The bridge end to end against the local
-- sandbox: Planfix tasks become Planado jobs, a technician finishes one,
-- Planado's webhook comes back, and the Planfix task gets the result.
-- Prints the story with its counts; exits non-zero if any step fails.
package.path = "lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;examples/?.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local planapi = require "planapi"
local sandbox = require "sandbox"
local Bridge = require "planfix_to_planado"

local SECRET = "demo-webhook-secret-" .. tostring(os.time())
local PF_SECRET = "demo-scenario-secret-" .. tostring(os.time())
local STATUS_NEW, STATUS_DONE = 1, 3

local receiver_pid -- the webhook receiver's process, stopped whatever happens

local function say(fmt, ...) io.write((fmt):format(...), "\n") io.flush() end
local function check(v, err, what)
  if v == nil or v == false then
    io.stderr:write("demo failed: ", what, ": ", tostring(err), "\n")
    if receiver_pid then os.execute("kill " .. receiver_pid .. " 2>/dev/null") end
    os.exit(1)
  end
  return v
end

local env = sandbox.env()
sandbox.reset()
-- Webhook retries a second apart (Planado's own start at minutes).
sandbox.config { planado = { webhook = { delays = { 1 }, timeout = 5, max_attempts = 5 } } }
local ca = env.ca_file
local rest = planapi.planfix_rest { base_url = sandbox.https_url "rest/", token = sandbox.TOKEN, ca_file = ca }
local planado = planapi.planado { url = sandbox.https_url "planado/v2/", api_key = sandbox.PLANADO_KEY, ca_file = ca }

-- The bridge's webhook receiver: its own process, as in production.
local receiver = assert(io.popen(("exec sh -c 'echo $$; exec env PLANFIX_REST_URL=%s PLANFIX_TOKEN=%s "
  .. "PLANADO_URL=%s PLANADO_API_KEY=%s PLANADO_WEBHOOK_SECRET=%s PLANFIX_EVENTS_SECRET=%s PLANAPI_CA_FILE=%s "
  .. "LUA_PATH=\"lua/?.lua;lua/?/init.lua;;\" LUA_CPATH=\"./?.so;;\" lua5.4 examples/planfix_to_planado.lua serve 0'")
  :format(sandbox.https_url "rest/", sandbox.TOKEN, sandbox.https_url "planado/v2/", sandbox.PLANADO_KEY, SECRET,
    PF_SECRET, ca)))
receiver_pid = receiver:read "l"
local port = tonumber((receiver:read "l" or ""):match ":(%d+)$")
check(port, "no port", "starting the webhook receiver")
sandbox.control("POST", "planado/webhooks", { url = ("http://127.0.0.1:%d/planado"):format(port), secret = SECRET,
  event_types = { "job_finished" } })

say "planapi demo: Planfix tasks become Planado jobs, and finished jobs report back."
say "(The bridge's receiver runs as its own process: Planado's webhook and Planfix's scenario requests.)"
say ""
local new = {
  { "Replace the pump at Acme", "The pump in the basement is noisy; replace it and check the pressure." },
  { "Service the boiler at the school", "Annual service, bring the gasket kit." },
  { "Install the water filter for Ivanov", "Kitchen, under the sink." },
}
local first
for i, t in ipairs(new) do
  local id = check(rest.tasks:create { name = t[1], description = t[2], status = { id = STATUS_NEW } })
  if i == 1 then first = id end
end
local bridge = Bridge.new { planfix = rest, planado = planado, status = STATUS_NEW, done_status = STATUS_DONE }
local counts, jobs = bridge:sync()
say("1. Planfix has %d tasks in status New (%d just created); the bridge made %d Planado jobs,",
  counts.tasks, #new, counts.created)
say("   each with external_id \"planfix-<task id>\".")
check(counts.failed == 0 and counts.created == counts.tasks, "created " .. counts.created, "the first sync")
local again = bridge:sync()
say("2. Sync again: %d created, %d already there. A re-run never makes a job twice.", again.created, again.existing)
check(again.created == 0 and again.existing == counts.tasks, "created " .. again.created, "the second sync")

-- Planfix's scenario (what the account's admin sets up): every task created
-- or changed sends an HTTP request to the bridge.
sandbox.control("POST", "planfix/scenarios", { url = ("http://127.0.0.1:%d/planfix"):format(port),
  triggers = { "task_created", "task_changed" }, name = "to the bridge",
  body = { event = "{{event}}", task_id = "{{task.id}}", changed_at = "{{change_time}}", secret = PF_SECRET } })
local added = check(rest.tasks:create { name = "Fix the leak at the bakery", description = "Under the counter.",
  status = { id = STATUS_NEW } })
check(sandbox.control("POST", "planfix/scenarios/flush", { timeout = 20 }).pending == 0, "still pending",
  "the scenario request")
local made
for _ = 1, 100 do -- the bridge answered at once; its job follows
  made = planado.jobs:get("planfix-" .. added)
  if made then break end
  planapi.core.sleep(0.1)
end
check(made, "no job planfix-" .. added, "the job of the scenario's task")
say("3. A dispatcher adds task %d in Planfix. Its scenario request reaches the bridge, which answers", added)
say("   at once and then makes Planado job planfix-%d: no sync run, no polling.", added)

local uuid = jobs[tostring(first)]
sandbox.control("POST", "planado/jobs/" .. uuid .. "/finish",
  { resolution = { name = "Done", successful = true }, comment = "Pump replaced, pressure OK" })
say("4. A technician finishes job planfix-%d in Planado: \"Done. Pump replaced, pressure OK\".", first)
check(sandbox.control("POST", "planado/webhooks/flush", { timeout = 20 }).pending == 0, "still pending",
  "the webhook delivery")
for _ = 1, 100 do -- the webhook is answered at once; the report on the task follows
  local t = rest.tasks:get(first, { fields = "id,status" })
  local st = t and (type(t.status) == "table" and t.status.id or t.status)
  if tonumber(st) == STATUS_DONE then break end
  planapi.core.sleep(0.1)
end
os.execute("kill " .. receiver_pid)
receiver:read "a"
receiver:close()
local delivered, from_planfix = 0, 0
for _, d in ipairs(sandbox.control("GET", "planado/deliveries").deliveries) do
  if d.status == 200 then delivered = delivered + 1 end
end
for _, r in ipairs(sandbox.control("GET", "planfix/requests").requests) do
  if r.status == 200 then from_planfix = from_planfix + 1 end
end
say("5. Planado's webhook arrives (%d delivery); the bridge answers at once and reports on the task.", delivered)

local comments = {}
for c in rest.tasks:comments(first, { fields = "id,description" }) do comments[#comments + 1] = c end
local task = check(rest.tasks:get(first, { fields = "id,name,status" }))
local last = comments[#comments] and comments[#comments].description or ""
local status = type(task.status) == "table" and task.status.id or task.status
say("6. Planfix task %d now says: \"%s\"", first, last)
say("   and its status is %s (Completed).", tostring(status))
check(last:find("Pump replaced", 1, true), "no comment", "the report on the task")
check(tonumber(status) == STATUS_DONE, "status " .. tostring(status), "the task's status")

local stats = sandbox.stats()
local planfix_requests, planado_requests = #sandbox.log_of "rest", #sandbox.log_of "planado"
say ""
say("Requests: %d to Planfix, %d to Planado, paced to their limits; webhook deliveries: %d; Planfix scenario",
  planfix_requests, planado_requests, stats.planado_delivery_attempts or delivered)
say("requests to the bridge: %d (the new task, and the status the bridge set).", from_planfix)
rest:close()
planado:close()
