-- One load for concurrent misses across processes: four processes on one
-- scope (file, shm outside nginx, Redis) miss the same key at once; the
-- loader, which takes a while as a request would, runs once in total and
-- every process gets its value; a failing loader also runs once, and every
-- process gets its error, which is not cached. The workers count loader
-- calls in a file of their own (spec/helpers/cache_worker.lua).
local portable = require "portable"
local redis_server = require "redis_server"
local workers = require "workers"

local WORKERS = 4
local LATENCY = 0.2 -- the loader's request, after every worker has come to fetch (cache_worker.lua)

local function lines_of(path)
  local text = portable.read_file(path) or ""
  local out = {}
  for line in text:gmatch "[^\n]+" do out[#out + 1] = line end
  return out
end

-- Start the workers on scope, let them go together once all are ready:
-- each one's result and the loader calls counted per key.
local function run(scope, env)
  local results, dir = workers.run(WORKERS, "spec/helpers/cache_worker.lua",
    function(i, d) return { scope, d, i, LATENCY, WORKERS } end, env)
  local calls = { fields = #lines_of(dir .. "/fields.calls"), templates = #lines_of(dir .. "/templates.calls") }
  portable.rmtree(dir)
  return results, calls
end

local function check(results, calls)
  assert.equal(1, calls.fields, "the loader ran once for four concurrent misses")
  assert.equal(1, calls.templates, "the failing loader ran once for four concurrent misses")
  local loaded_by = results[1].value[1].loaded_by
  for i = 1, WORKERS do
    assert.same({ { id = 101, name = "Order number", loaded_by = loaded_by } }, results[i].value)
    assert.is_false(results[i].err)
    assert.is_false(results[i].failed)
    assert.equal("transport", results[i].failed_err)
    assert.matches("connection refused", results[i].failed_message)
  end
end

describe("cache single flight across 4 processes", function()
  it("file scope: one load, one failure shared", function()
    local dir = portable.tmpdir()
    check(run("file:" .. dir .. "/defs"))
    portable.rmtree(dir)
  end)

  it("shm scope outside nginx (the user's runtime dir): one load, one failure shared", function()
    local dir = portable.tmpdir()
    check(run("shm:spec59", "PLANAPI_RUNTIME_DIR=" .. dir .. "/rt"))
    portable.rmtree(dir)
  end)

  it("redis scope: one load, one failure shared, and the failure not cached", function()
    local redis = redis_server.start()
    check(run(redis.url))
    local keys = assert(redis_server.command(redis.port, { "KEYS", "planapi:cache:spec59|v|*" }))
    assert.same({ "planapi:cache:spec59|v|fields:task" }, keys)
    redis.stop()
  end)
end)
