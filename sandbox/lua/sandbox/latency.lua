-- Latency mode: every new TLS connection to the HTTPS endpoint is held
-- before its handshake completes, as a remote API's TCP and TLS round trips
-- would hold it. A request on a kept-alive connection pays nothing, so a
-- client that opens a connection for one request and reuses another for the
-- next shows whether it paces where the server measures: at the moment each
-- request arrives. Off after a reset.
--
-- POST /_sandbox/config { "latency": { "connect": 0.15, "handshake": 0 } }
-- connect: seconds for opening a connection; handshake: seconds more for
-- TLS. The sandbox can only hold the connection once the client's first
-- TLS message has arrived (ssl_certificate_by_lua, the handshake phase
-- where stock nginx lets Lua sleep), so both are spent there; for the
-- client the sum is the time from connect() to a usable connection, as with
-- a distant server. Plain HTTP connections are not held.
local M = {}

local function defaults()
  return { connect = 0, handshake = 0, delayed = 0 }
end

M.state = defaults()

function M.reset()
  M.state = defaults()
end

function M.configure(cfg)
  if cfg == false then
    M.reset()
    return true
  end
  if type(cfg) ~= "table" then return nil, "latency must be an object or false" end
  for k, v in pairs(cfg) do
    if k ~= "connect" and k ~= "handshake" then return nil, "unknown latency key '" .. tostring(k) .. "'" end
    local n = tonumber(v)
    if not n or n < 0 or n > 30 then return nil, "latency." .. k .. " must be seconds from 0 to 30" end
    M.state[k] = n
  end
  return true
end

function M.describe()
  return { latency = { connect = M.state.connect, handshake = M.state.handshake } }
end

-- ssl_certificate_by_lua: runs for every full handshake (the HTTPS
-- server resumes no session, so for every new connection).
function M.handshake()
  local delay = M.state.connect + M.state.handshake
  if delay > 0 then
    M.state.delayed = M.state.delayed + 1
    ngx.sleep(delay)
  end
end

return M
