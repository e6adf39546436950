-- A throwaway redis-server on a free loopback port, for specs and benches.
--   local redis = require("redis_server").start()  -- { port =, url =, stop = function }
local core = require "planapi.core"

local M = {}

local function free_port()
  for _ = 1, 50 do
    local port = math.random(30000, 60000)
    local sock = core.tcp_connect and core.tcp_connect("127.0.0.1", port, 0.2)
    if sock then
      sock:close()
    else
      return port
    end
  end
  error "no free port for redis-server"
end

function M.start(opts)
  opts = opts or {}
  assert(os.execute "command -v redis-server > /dev/null", "redis-server is not installed (Debian: redis-server)")
  local dir = os.tmpname()
  os.remove(dir)
  assert(core.mkdir(dir))
  local port = free_port()
  local pidfile = dir .. "/redis.pid"
  local cmd = ("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize yes "
    .. "--pidfile %s --dir %s --logfile %s/redis.log%s"):format(port, pidfile, dir, dir,
    opts.password and (" --requirepass " .. opts.password) or "")
  assert(os.execute(cmd), "redis-server did not start")
  -- Wait until it answers (daemonize returns before it listens).
  for _ = 1, 100 do
    local sock = core.tcp_connect("127.0.0.1", port, 0.2)
    if sock then
      sock:close()
      break
    end
    core.sleep(0.02)
  end
  local server = { port = port, url = ("redis://127.0.0.1:%d/0"):format(port), dir = dir }
  function server.stop()
    local f = io.open(pidfile)
    if f then
      local pid = f:read "n"
      f:close()
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
    end
    for _ = 1, 100 do
      if not core.tcp_connect("127.0.0.1", port, 0.1) then break end
      core.sleep(0.02)
    end
    for _, name in ipairs(core.list_dir(dir) or {}) do os.remove(dir .. "/" .. name) end
    os.remove(dir)
  end
  return server
end

return M
