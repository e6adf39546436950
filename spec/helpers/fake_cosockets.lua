-- A stand-in for the nginx lua API for the Redis specs (spec/47, spec/55):
-- get_phase answers the phase given (phase(n, p) changes it), and
-- ngx.socket.tcp makes cosockets out of core.tcp_connect sockets, counted.
--
--   local fake = require "fake_cosockets"
--   local n, made = fake.ngx "content"   -- made: cosockets, keepalive, pools, timeout_ms
--   fake.with(n, function() ... end)     -- _G.ngx is n while fn runs
--   fake.assert_pooled(made, 2, port, 2000)
local core = require "planapi.core"

local M = {}

local function cosocket(made)
  made.cosockets = made.cosockets + 1
  local inner
  local s = {}
  function s.settimeout(_, ms) made.timeout_ms = ms end
  function s.connect(_, host, port, o)
    made.pools[#made.pools + 1] = o.pool
    local err
    inner, err = core.tcp_connect(host, port, 1)
    return inner and 1, err
  end
  function s.send(_, data) return inner:send(data) end
  function s.receive(_, pattern) return inner:receive(pattern) end
  function s.close() return inner:close() end
  function s.getreusedtimes() return 0 end
  function s.setkeepalive()
    made.keepalive = made.keepalive + 1
    return inner:close()
  end
  return s
end

--- The fake ngx in phase, and the count of what it made.
function M.ngx(phase)
  local made = { cosockets = 0, keepalive = 0, pools = {}, phase = phase }
  local n = { get_phase = function() return made.phase end, socket = {} }
  function n.socket.tcp() return cosocket(made) end
  return n, made
end

--- Assert that at least `least` cosockets were made, each with timeout_ms
-- and every one back in nginx's pool named for the Redis on port, database 0.
function M.assert_pooled(made, least, port, timeout_ms)
  assert(made.cosockets >= least, ("%d cosockets, %d expected at least"):format(made.cosockets, least))
  assert(made.cosockets == made.keepalive,
    ("%d of %d cosockets back in the pool"):format(made.keepalive, made.cosockets))
  assert(made.timeout_ms == timeout_ms, "cosocket timeout " .. tostring(made.timeout_ms) .. " ms")
  local pool = ("planapi-redis:127.0.0.1:%d:0:"):format(port)
  assert(made.pools[1] == pool, "pool " .. tostring(made.pools[1]))
end

--- Run fn with _G.ngx = n; raise fn's error after putting ngx back.
function M.with(n, fn)
  rawset(_G, "ngx", n)
  local ok, err = pcall(fn)
  rawset(_G, "ngx", nil)
  assert(ok, err)
end

return M
