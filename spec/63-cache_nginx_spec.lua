-- The definitions cache inside nginx, across two workers (the OpenResty
-- gateway of examples/openresty with a test server beside it): twelve
-- requests at once, each making its own cache object, miss the same key;
-- the loader, which waits on ngx.sleep as a request would, runs once in
-- total through the lua_shared_dict (shm:NAME) and through Redis, and once
-- per worker in the memory scope; a failing loader likewise, its error
-- reaching every request. The loader calls are counted by the dict's own
-- incr, not by the cache.
local core = require "planapi.core"
local gateway = require "gateway"
local redis_server = require "redis_server"
local portable = require "portable"

local REQUESTS = 12 -- per scope: reuseport spreads them; all on one worker would be 2 * 2^-12

local TEST_SERVER = [==[
local cache = require "planapi.cache"
local core = require "planapi.core"
local scope, run = ngx.var.uri:match "^/t/(%w+)/([%w_]+)$"
local dict = ngx.shared.spec63
if run == "calls" then
  return ngx.say(core.json_encode { fields = dict:get("fields:" .. scope) or 0,
    templates = dict:get("templates:" .. scope) or 0 })
end
local scopes = { shm = "shm:spec63", redis = "@REDIS_URL@", memory = "memory" }
local c = cache.new { scope = scopes[scope], namespace = "spec63:" .. run }
local value, err = c:fetch("fields:task", function()
  dict:incr("fields:" .. scope, 1, 0)
  ngx.sleep(@LATENCY@)
  return { { id = 101, name = "Order number", loaded_by = ngx.worker.id() } }
end)
local failed, ferr = c:fetch("templates:task", function()
  dict:incr("templates:" .. scope, 1, 0)
  ngx.sleep(@LATENCY@)
  return nil, core.error { kind = "transport", message = "connection refused" }
end)
ngx.say(core.json_encode { worker = ngx.worker.id(), value = value or false, err = err and err.kind or false,
  failed = failed or false, failed_err = ferr and ferr.kind or false })
]==]

local function test_server(redis_url)
  return function(gw)
    gw.test_port = gateway.free_port()
    local values = { REDIS_URL = redis_url, LATENCY = "0.4" }
    portable.write_file(gw.dir .. "/t63.lua", (TEST_SERVER:gsub("@([%u_]+)@", values)))
    portable.write_file(gw.dir .. "/t63.conf", ([[
lua_shared_dict spec63 1m;
server {
    listen 127.0.0.1:%d reuseport;
    location /t/ { content_by_lua_file %s/t63.lua; }
}
]]):format(gw.test_port, gw.dir))
    return gw.dir .. "/t63.conf"
  end
end

local describe_gateway = gateway.available and describe or pending

describe_gateway("the definitions cache in nginx with two workers", function()
  local server, gw

  setup(function()
    server = redis_server.start()
    gw = gateway.new { workers = 2, include = test_server(server.url) }
    gateway.start(gw)
  end)

  teardown(function()
    gateway.stop(gw)
    if server then server.stop() end
  end)

  it("one load per scope (one per worker in memory), its value and its failure shared", function()
    local run = ("r%d"):format(os.time())
    local list = {}
    for _, scope in ipairs { "shm", "redis", "memory" } do
      for _ = 1, REQUESTS do
        list[#list + 1] = { method = "GET", path = ("/t/%s/%s"):format(scope, run), scope = scope }
      end
    end
    local results = gateway.http_many(gw.test_port, list)
    -- Per scope: the workers that answered, and how many.
    local workers = { shm = { n = 0 }, redis = { n = 0 }, memory = { n = 0 } }
    for i, r in ipairs(results) do
      local scope = list[i].scope
      assert.equal(200, r.status, tostring(r.body) .. tostring(portable.read_file(gw.dir .. "/error.log")))
      local doc = core.json_decode(r.body)
      local seen = workers[scope]
      if not seen[doc.worker] then seen[doc.worker], seen.n = true, seen.n + 1 end
      assert.equal(101, doc.value[1].id)
      assert.is_false(doc.err)
      assert.is_false(doc.failed)
      assert.equal("transport", doc.failed_err)
    end
    for _, scope in ipairs { "shm", "redis" } do
      assert.equal(2, workers[scope].n, scope .. ": the requests reached one worker only")
      local calls = core.json_decode(gateway.http(gw.test_port, "GET", ("/t/%s/calls"):format(scope)).body)
      assert.same({ fields = 1, templates = 1 }, calls, scope)
    end
    local calls = core.json_decode(gateway.http(gw.test_port, "GET", "/t/memory/calls").body)
    local n = workers.memory.n
    assert.same({ fields = n, templates = n }, calls, "memory: one load per worker")
  end)
end)
