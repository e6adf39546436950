-- A throwaway redis-server on a free loopback port, for specs and benches.
--   local redis = require("redis_server").start { password = "..." }
--   redis.port, redis.url; redis.stop()
--   require("redis_server").command(port, { "GET", "k" } [, password]) -> reply | nil, err
--   require("redis_server").advance(port, "planapi:events:", seconds)    -- the event store's time
local core = require "planapi.core"
local portable = require "portable"

local M = {}

--- A loopback port nothing listens on. Below Linux's ephemeral range
-- (32768 and up), so no outgoing connection holds it when a server then
-- binds it.
function M.free_port()
  for _ = 1, 100 do
    local port = math.random(20000, 32000)
    local sock = core.tcp_connect("127.0.0.1", port, 0.5)
    if not sock then return port end
    sock:close()
  end
  error "no free port found"
end

local dir
local function tmp_dir()
  if not dir then
    local p = assert(io.popen "mktemp -d")
    dir = p:read "l"
    p:close()
  end
  return dir
end

--- Start one; it answers PING before this returns. Another port is tried
-- if it could not bind (someone took the port first).
function M.start(opts)
  opts = opts or {}
  assert(portable.execute "command -v redis-server > /dev/null 2>&1",
    "redis-server is not installed (Debian: redis-server; tools/ensure-deps installs it)")
  local d = tmp_dir()
  for _ = 1, 5 do
    local port = M.free_port()
    local pidfile = ("%s/redis-%d.pid"):format(d, port)
    os.execute(("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
      .. "--pidfile %s --dir %s --logfile %s/redis-%d.log%s"):format(port, pidfile, d, d, port,
      opts.password and (" --requirepass " .. opts.password) or ""))
    for _ = 1, 100 do -- up to 5 s: daemonize returns before the server listens
      local sock = core.tcp_connect("127.0.0.1", port, 0.2)
      if sock then
        local reply = sock:send "PING\r\n" and sock:receive "*l"
        sock:close()
        if reply == "+PONG" or (reply and reply:match "^%-NOAUTH") then
          local server = { port = port, pidfile = pidfile, url = ("redis://127.0.0.1:%d/0"):format(port),
            logfile = ("%s/redis-%d.log"):format(d, port) }
          function server.stop() M.stop(server) end
          return server
        end
      end
      core.sleep(0.05)
    end
  end
  error("redis-server did not start (see the logs in " .. d .. ")")
end

--- One command on a new connection to the server on port (AUTH first
-- with password, when given): the reply | nil, err.
function M.command(port, args, password)
  local resp = require "planapi.limiter.redis_protocol"
  local sock = assert(core.tcp_connect("127.0.0.1", port, 2))
  if password then assert(resp.call(sock, { "AUTH", password })) end
  local value, err = resp.call(sock, args)
  sock:close()
  return value, err
end

-- Redis's clock cannot be moved: this script moves what the event store
-- keeps under a prefix closer to it instead, as if `shift` ms had passed.
local ADVANCE = [[
local shift = tonumber(ARGV[1])
for _, k in ipairs(redis.call('KEYS', ARGV[2] .. '*')) do
  local kind = redis.call('TYPE', k).ok
  if kind == 'zset' then
    local items = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
    for i = 1, #items, 2 do redis.call('ZADD', k, tonumber(items[i + 1]) - shift, items[i]) end
  elseif kind == 'hash' then
    for _, field in ipairs { 'lease_until', 'expires_at' } do
      local at = redis.call('HGET', k, field)
      if at then redis.call('HSET', k, field, tonumber(at) - shift) end
    end
  end
  local left = redis.call('PTTL', k)
  if left > 0 and left <= shift then
    redis.call('DEL', k)
  elseif left > 0 then
    redis.call('PEXPIRE', k, left - shift)
  end
end
return 1
]]

--- For the Redis event store (events/store_redis.lua) under prefix: as if
-- `seconds` had passed on the server's clock (leases, pending scores,
-- expiry times and ttls).
function M.advance(port, prefix, seconds)
  assert(M.command(port, { "EVAL", ADVANCE, 0, math.floor(seconds * 1000 + 0.5), prefix }))
end

--- Stop a server started here, by the pid it wrote, and wait until it is gone.
function M.stop(server)
  local f = server and io.open(server.pidfile)
  if not f then return end
  local pid = f:read "l"
  f:close()
  if pid and pid:match "^%d+$" then os.execute("kill " .. pid .. " 2>/dev/null") end
  for _ = 1, 100 do -- redis removes its pidfile as it exits
    local still = io.open(server.pidfile)
    if not still then break end
    still:close()
    core.sleep(0.05)
  end
  os.remove(server.logfile)
  -- only once empty: the last server's stop removes it, and the next
  -- start makes a new one
  if os.remove(dir) then dir = nil end
end

return M
