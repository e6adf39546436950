-- Request-rate enforcement (Planfix: 1 request per second) and the daily
-- quota (code 22, X-RateLimit-Remaining). Both are off after a reset so that
-- ordinary tests run at full speed; tests switch them on through
-- POST /_sandbox/config.
local M = {}

local function defaults()
  return {
    rate = { enabled = false, interval = 1.0 },
    quota = nil, -- { limit = N, remaining = N, status = 403 } when configured
    last_accepted = nil, -- arrival (ngx.req.start_time) of the last request that passed the rate check
    violations = 0,
    min_gap = nil, -- seconds: the shortest gap between two accepted requests while rated
    quota_used = 0,
  }
end

M.state = defaults()

function M.reset()
  M.state = defaults()
end

-- Applies {rate = {...}|false, quota = {...}|false}; partial updates merge.
function M.configure(cfg)
  local s = M.state
  if cfg.rate ~= nil then
    if cfg.rate == false then
      s.rate.enabled = false
    elseif type(cfg.rate) == "table" then
      if cfg.rate.enabled ~= nil then s.rate.enabled = cfg.rate.enabled and true or false end
      if cfg.rate.interval ~= nil then
        local iv = tonumber(cfg.rate.interval)
        if not iv or iv < 0 then return nil, "rate.interval must be a number >= 0" end
        s.rate.interval = iv
      end
      -- A new rate setting starts a fresh window.
      s.last_accepted = nil
      s.min_gap = nil
    else
      return nil, "rate must be an object or false"
    end
  end
  if cfg.quota ~= nil then
    if cfg.quota == false or cfg.quota == ngx.null then
      s.quota = nil
    elseif type(cfg.quota) == "table" then
      local q = s.quota or { limit = 20000, status = 403 }
      for _, k in ipairs({ "limit", "remaining", "status" }) do
        if cfg.quota[k] ~= nil then
          local v = tonumber(cfg.quota[k])
          if not v or v < 0 or v % 1 ~= 0 then return nil, "quota." .. k .. " must be an integer >= 0" end
          q[k] = v
        end
      end
      if q.remaining == nil then q.remaining = q.limit end
      s.quota = q
    else
      return nil, "quota must be an object or false"
    end
  end
  return true
end

function M.describe()
  local s = M.state
  return {
    rate = { enabled = s.rate.enabled, interval = s.rate.interval },
    quota = s.quota and { limit = s.quota.limit, remaining = s.quota.remaining, status = s.quota.status } or false,
  }
end

-- Extra response headers for every API answer (X-RateLimit-Remaining while a
-- quota is configured).
function M.headers()
  local q = M.state.quota
  if not q then return nil end
  return { ["X-RateLimit-Remaining"] = tostring(q.remaining) }
end

-- Decides whether a request may proceed. Returns nil when accepted, else
-- status, body table, extra headers.
function M.check()
  local s = M.state
  -- The request's arrival as nginx stamped it when it began reading it,
  -- not the moment this handler runs: the work between the two (auth,
  -- the body, the router, a busy worker) is the server's, not the gap
  -- between the client's writes that the limit is about.
  local now = ngx.req.start_time()
  if s.rate.enabled and s.last_accepted then
    local elapsed = now - s.last_accepted
    if elapsed < s.rate.interval then
      s.violations = s.violations + 1
      local retry = math.max(1, math.ceil(s.rate.interval - elapsed))
      return 429, { result = "fail", code = 0, error = "Too many requests" },
        { ["Retry-After"] = tostring(retry) }
    end
  end
  if s.rate.enabled and s.last_accepted and (s.min_gap == nil or now - s.last_accepted < s.min_gap) then
    s.min_gap = now - s.last_accepted
  end
  s.last_accepted = now
  local q = s.quota
  if q then
    if q.remaining <= 0 then
      return q.status or 403, { result = "fail", code = 22, error = "Daily request limit exceeded" }
    end
    q.remaining = q.remaining - 1
  end
  -- Every accepted request costs quota on the real service, configured or not.
  s.quota_used = s.quota_used + 1
  return nil
end

return M
