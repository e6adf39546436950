-- cache_worker.lua: one process of spec/59. It opens the cache on its scope,
-- says it is ready, waits for the go file, then fetches two keys whose
-- loaders take a while (a request on its way: the other workers miss
-- meanwhile): one loads a value, one fails. Each worker marks that it is
-- about to fetch a key, and a loader first waits until every worker has
-- (then `latency` seconds more), so a worker the machine's load delays is
-- still among the concurrent misses, not a later one that a failure, not
-- cached, would rightly send to its own load. Each loader call appends a
-- line to <dir>/<key>.calls, the count the spec checks. Prints one line of
-- JSON: what each fetch returned.
--   lua cache_worker.lua <scope> <dir> <worker number> <latency> <workers>
local core = require "planapi.core"
local cache = require "planapi.cache"
local workers = require "workers"

local scope, dir, me, latency, workers_count = arg[1], arg[2], arg[3], tonumber(arg[4]), tonumber(arg[5])

local function count(key)
  local f = assert(io.open(("%s/%s.calls"):format(dir, key), "a"))
  f:write(me, "\n")
  f:close()
end

-- Every worker's mark for key, then latency.
local function all_entered_then_wait(key)
  workers.wait_all(dir, key .. ".entered", workers_count)
  core.sleep(latency)
end

local c = cache.new { scope = scope, namespace = "spec59" }
workers.ready_then_go(dir, me)

workers.arrive(dir, "fields.entered", me)
local value, err = c:fetch("fields:task", function()
  count "fields"
  all_entered_then_wait "fields"
  return { { id = 101, name = "Order number", loaded_by = me } }
end)
workers.arrive(dir, "templates.entered", me)
local failed, ferr = c:fetch("templates:task", function()
  count "templates"
  all_entered_then_wait "templates"
  return nil, core.error { kind = "transport", message = "connection refused" }
end)
print(core.json_encode { value = value or false, err = err and err.kind or false,
  failed = failed or false, failed_err = ferr and ferr.kind or false, failed_message = ferr and ferr.message or false })
