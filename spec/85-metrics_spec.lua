-- planapi.metrics (lua/planapi/metrics.lua) in the OpenResty gateway
-- example (examples/openresty/): its GET /metrics is read by a real
-- Prometheus text parser (python3-prometheus-client's
-- text_string_to_metric_families, Debian's python3), and the values match
-- what the sandbox saw: attempts and answers by status from the sandbox's
-- own log, the quota from its stats. The gateway runs two workers, whose
-- counts meet in one lua_shared_dict. The same run checks the call events
-- under nginx: the gateway's JSON Lines log (GATEWAY_CALL_LOG, written
-- under build/journal for the secret scan) has the documented fields and no
-- secret, and agrees with the counters. The in-process counters: last test.
local planapi = require "planapi"
local sandbox = require "sandbox"
local portable = require "portable"

local gateway = require "gateway"
local PYTHON = "/usr/bin/python3" -- Debian's, where python3-prometheus-client is

-- The parser: every sample as one JSON line { family, type, name, labels, value }.
local PARSE = [[
import json, sys
from prometheus_client.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        print(json.dumps({"family": f.name, "type": f.type, "name": s.name, "labels": s.labels, "value": s.value}))
]]

local journal = require "journal"

-- One request to the gateway: status, body.
local function fetch(port, method, path)
  local r = gateway.http(port, method, path)
  return r.status, r.body
end

local function parse_metrics(text)
  local input = os.tmpname()
  portable.write_file(input, text)
  local script = os.tmpname()
  portable.write_file(script, PARSE)
  local out, code = portable.run(("%s %s < %s 2>&1"):format(PYTHON, script, input))
  os.remove(input)
  os.remove(script)
  assert(code == 0, "the Prometheus parser refused /metrics: " .. tostring(out))
  local samples = {}
  for line in out:gmatch "[^\n]+" do samples[#samples + 1] = assert(planapi.json.decode(line)) end
  return samples
end

-- The sum of the samples named name whose labels include want.
local function total(samples, name, want)
  local sum, found = 0, false
  for _, s in ipairs(samples) do
    local match = s.name == name
    for k, v in pairs(want or {}) do match = match and s.labels[k] == tostring(v) end
    if match then sum, found = sum + s.value, true end
  end
  return found and sum or nil
end

local has_parser = portable.execute(PYTHON .. " -c 'import prometheus_client' 2>/dev/null")
local describe_gateway = (gateway.available and has_parser) and describe or pending

describe_gateway("the gateway's /metrics (two workers)", function()
  local gw, port, call_log
  local answers = {}

  setup(function()
    call_log = journal.log_path "gateway-calls" -- under build/journal: the secret scan reads it
    gw = gateway.start(gateway.new { workers = 2, env = { GATEWAY_CALL_LOG = call_log } })
    port = gw.port
    sandbox.reset()
    sandbox.config { quota = { limit = 500 } }
    -- a new job, its repeat (Planado refuses it: one error), a Planfix 503
    -- ridden out (one retry), a task Planfix does not have (one error)
    answers[1] = fetch(port, "POST", "/tasks/1/to-planado")
    answers[2] = fetch(port, "POST", "/tasks/1/to-planado")
    sandbox.fault { mode = "status", status = 503, count = 1, path = "/rest/" }
    answers[3] = fetch(port, "POST", "/tasks/2/to-planado")
    answers[4] = fetch(port, "POST", "/tasks/999/to-planado")
  end)

  teardown(function()
    gateway.stop(gw)
    sandbox.reset()
  end)

  it("the calls were made as planned", function()
    assert.same({ 201, 200, 201, 404 }, answers)
  end)

  it("is valid Prometheus text whose values match the sandbox's log and stats", function()
    local status, text = fetch(port, "GET", "/metrics")
    assert.equal(200, status)
    local samples = parse_metrics(text)
    local types = {}
    for _, s in ipairs(samples) do types[s.family] = s.type end
    assert.equal("counter", types.planapi_requests)
    assert.equal("gauge", types.planapi_quota_remaining)
    -- every attempt that reached the sandbox, and every answer by status
    local sent, by_status = { rest = 0, planado = 0 }, {}
    for _, e in ipairs(sandbox.log()) do
      if sent[e.kind] then
        sent[e.kind] = sent[e.kind] + 1
        local k = e.kind .. " " .. e.status
        by_status[k] = (by_status[k] or 0) + 1
      end
    end
    assert.equal(sent.rest, total(samples, "planapi_requests_total", { api = "planfix_rest" }))
    assert.equal(sent.planado, total(samples, "planapi_requests_total", { api = "planado" }))
    for k, n in pairs(by_status) do
      local kind, code = k:match "^(%S+) (%d+)$"
      local api = kind == "rest" and "planfix_rest" or "planado"
      assert.equal(n, total(samples, "planapi_responses_total", { api = api, status = code }), k)
    end
    assert.equal(1, total(samples, "planapi_retries_total", { api = "planfix_rest", kind = "http" }))
    assert.equal(1, total(samples, "planapi_errors_total", { api = "planfix_rest" }))
    assert.equal(1, total(samples, "planapi_errors_total", { api = "planado" }))
    -- the last Planfix answer (the missing task) said what the sandbox's quota says now
    local stats = sandbox.stats()
    assert.equal(stats.quota_remaining, total(samples, "planapi_quota_remaining", { api = "planfix_rest" }))
    assert.is_nil(text:find(sandbox.TOKEN, 1, true))
    assert.is_nil(text:find(sandbox.PLANADO_KEY, 1, true))
  end)

  it("the call events under nginx: one JSON line each, the documented fields, no secret", function()
    local lines = {}
    for line in assert(io.open(call_log)):lines() do lines[#lines + 1] = line end
    local requests = { planfix_rest = 0, planado = 0 }
    for _, line in ipairs(lines) do
      for _, s in ipairs { sandbox.TOKEN, sandbox.PLANADO_KEY } do
        assert.is_nil(line:find(s, 1, true), line)
      end
      local ev = assert(planapi.json.decode(line))
      assert.is_truthy(({ request = true, response = true, retry = true, error = true })[ev.event], line)
      assert.equal("string", type(ev.operation))
      assert.equal("number", type(ev.attempt))
      assert.equal("number", type(ev.elapsed))
      if ev.event == "request" then requests[ev.api] = requests[ev.api] + 1 end
      if ev.event == "response" then assert.equal("number", type(ev.status)) end
      if ev.event == "error" or ev.event == "retry" then assert.equal("string", type(ev.kind)) end
    end
    local samples = parse_metrics(select(2, fetch(port, "GET", "/metrics")))
    assert.equal(requests.planfix_rest, total(samples, "planapi_requests_total", { api = "planfix_rest" }))
    assert.equal(requests.planado, total(samples, "planapi_requests_total", { api = "planado" }))
  end)
end)

describe("planapi.metrics in one process", function()
  it("counts a client's calls and renders text the parser reads back", function()
    if not has_parser then
      pending("python3-prometheus-client is not installed (tools/ensure-deps)")
      return
    end
    sandbox.reset()
    local metrics = planapi.metrics.new()
    local t = sandbox.fake_time()
    local c = sandbox.planado { hooks = metrics:hooks(), clock = t.clock, sleep = t.sleep, limiter = "local",
      rate = { rate = 1, per = 2, burst = 1 } }
    assert(c.jobs:get "job-ext-1")
    assert(c.jobs:get "job-ext-1")
    sandbox.fault { mode = "status", status = 404, count = 1 }
    assert.is_nil(c.jobs:get "job-ext-1")
    local samples = parse_metrics(metrics:render())
    assert.equal(3, total(samples, "planapi_requests_total", { api = "planado" }))
    assert.equal(2, total(samples, "planapi_responses_total", { api = "planado", status = 200 }))
    assert.equal(1, total(samples, "planapi_errors_total", { api = "planado" }))
    assert.equal(2, total(samples, "planapi_limiter_waits_total", { api = "planado" }))
    assert.is_true(total(samples, "planapi_limiter_wait_seconds_total", { api = "planado" }) > 3)
    -- metrics:value reads one series back: this error's kind
    sandbox.fault { mode = "status", status = 404, count = 1 }
    local _, err = c.jobs:get "job-ext-1"
    local account = samples[1].labels.account
    assert.equal(2, metrics:value("planapi_errors_total", { api = "planado", account = account, kind = err.kind }))
    c:close()
    -- a dry run: counted apart, never as a request
    c = sandbox.planado { hooks = metrics:hooks(), dry_run = true }
    assert(c.jobs:create { description = "metrics dry run" })
    samples = parse_metrics(metrics:render())
    assert.equal(1, total(samples, "planapi_dry_runs_total", { api = "planado" }))
    assert.equal(4, total(samples, "planapi_requests_total", { api = "planado" }))
    c:close()
  end)
end)
