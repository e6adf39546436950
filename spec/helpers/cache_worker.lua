-- cache_worker.lua: one process of spec/59. It opens the cache on its scope,
-- says it is ready, waits for the go file, then fetches two keys whose
-- loaders take `latency` seconds (a request on its way: the other workers
-- miss meanwhile): one loads a value, one fails. Each loader call appends a
-- line to <dir>/<key>.calls, the count the spec checks. Prints one line of
-- JSON: what each fetch returned.
--   lua cache_worker.lua <scope> <dir> <worker number> <latency>
local core = require "planapi.core"
local cache = require "planapi.cache"
local workers = require "workers"

local scope, dir, me, latency = arg[1], arg[2], arg[3], tonumber(arg[4])

local function count(key)
  local f = assert(io.open(("%s/%s.calls"):format(dir, key), "a"))
  f:write(me, "\n")
  f:close()
end

local c = cache.new { scope = scope, namespace = "spec59" }
workers.ready_then_go(dir, me)

local value, err = c:fetch("fields:task", function()
  count "fields"
  core.sleep(latency)
  return { { id = 101, name = "Order number", loaded_by = me } }
end)
local failed, ferr = c:fetch("templates:task", function()
  count "templates"
  core.sleep(latency)
  return nil, core.error { kind = "transport", message = "connection refused" }
end)
print(core.json_encode { value = value or false, err = err and err.kind or false,
  failed = failed or false, failed_err = ferr and ferr.kind or false, failed_message = ferr and ferr.message or false })
