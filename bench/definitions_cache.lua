-- definitions_cache.lua (bench): the requests a sync spends on field
-- definitions. A sync sets two custom fields by name ("Order number", a line,
-- and "Region", a list) on every task with rest.tasks:set_fields, once with
-- the client's definitions cache (its default, in memory) and once with a
-- cache that keeps nothing (every lookup loads). Requests are counted
-- by the sandbox per operation, not by planapi: the definitions' operations
-- (GET /customfield/task, the task templates' list) against the rest (the
-- per-task template read, the write, the read-back). Two sizes show how the
-- definitions' share grows: not at all with the cache.
--   lua5.4 bench/definitions_cache.lua OUTDIR TASKS...      e.g. 100 1000
-- Writes OUTDIR/definitions.md and OUTDIR/definitions.targets.
package.path = "lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;bench/?.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local planapi = require "planapi"
local util = require "bench_util"
-- The sandbox counts the requests per operation: the oracle, not planapi.
local sandbox = require "sandbox"
local env = sandbox.env()

local OUT, sizes = arg[1] or "build/bench", {}
for i = 2, #arg do sizes[#sizes + 1] = assert(tonumber(arg[i]), "TASKS must be numbers") end

-- The definitions cache's methods, keeping nothing: what a script that
-- looks definitions up on every write would cost.
local function no_cache()
  local c = {}
  function c.get() return nil end
  function c.set() return true end
  function c.fetch(_, _, loader) return loader() end
  function c.invalidate() return true end
  function c.invalidate_prefix() return true end
  return c
end

-- The definitions' operations, as the sandbox names them ("METHOD /path").
local function is_definitions(op)
  return op:match "^GET /customfield/" ~= nil or op:match "/templates?$" ~= nil or op:match "/templates?/" ~= nil
end

local function sync(tasks, kept_by)
  sandbox.reset()
  sandbox.data { tasks = tasks }
  local rest = planapi.planfix_rest { base_url = env.rest_url, token = sandbox.TOKEN, ca_file = env.ca_file,
    rate = false, definitions = kept_by and { cache = kept_by } or nil }
  rest.fields:invalidate() -- a cold start: the process's cache may hold an earlier run's definitions
  local t0 = planapi.core.monotime()
  for id = 1, tasks do
    assert(rest.tasks:set_fields(id, { ["Order number"] = ("ORD-%d"):format(id),
      Region = id % 2 == 0 and "North" or "South" }))
  end
  local wall = planapi.core.monotime() - t0
  local definitions, total = 0, 0
  for op, n in pairs(sandbox.operations()) do
    total = total + n
    if is_definitions(op) then definitions = definitions + n end
  end
  return { tasks = tasks, total = total, definitions = definitions, wall = wall }
end

local md, targets = {}, {}
local function add(s) md[#md + 1] = s end
add("A sync that sets two custom fields by name on every task (`rest.tasks:set_fields(id, { [\"Order number\"] = "
  .. "..., Region = ... })`, the template check and the read-back on: planapi's defaults), with the client's "
  .. "definitions cache (its default, in memory; emptied before each run) and with a cache that keeps nothing. "
  .. "The sandbox counts the requests per operation; \"definitions\" are the field definitions' and the "
  .. "templates' reads.")
add ""
add "| tasks | cache | requests | definitions requests | other requests per task | wall s |"
add "|---:|---|---:|---:|---:|---:|"
local cached = {}
for _, tasks in ipairs(sizes) do
  for _, variant in ipairs { { "the client's (memory)" }, { "none", no_cache() } } do
    local r = sync(tasks, variant[2])
    if variant[2] == nil then cached[#cached + 1] = r end
    add(("| %s | %s | %s | %s | %.2f | %.2f |"):format(util.thousands(tasks), variant[1], util.thousands(r.total),
      util.thousands(r.definitions), (r.total - r.definitions) / tasks, r.wall))
  end
end
sandbox.reset()
local first, last = cached[1], cached[#cached]
targets[#targets + 1] = { last.definitions == first.definitions and last.definitions <= 3,
  ("definitions cost O(1) requests per run with the cache: the same at %s and %s tasks")
    :format(util.thousands(first.tasks), util.thousands(last.tasks)),
  ("%d and %d definitions requests"):format(first.definitions, last.definitions) }
add ""
add("With the cache the definitions are read once per run (and once per TTL, an hour by default, in a "
  .. "longer one); without it every set_fields reads them again, so they cost a request or two per task on top "
  .. "of the task's own (its template, the write, the read-back).")
add ""
util.write_section(OUT, "definitions", md, targets)
