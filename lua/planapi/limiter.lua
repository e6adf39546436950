-- limiter.lua: the pacing scope, chosen by one option of every client:
--   limiter = "local"                     this client only (default)
--   limiter = "shm:/run/myapp/limits"     every process on this host naming the same file
--   limiter = "redis://127.0.0.1:6379/0"  every process on every host, Redis holding the state
-- Every scope has the same methods: reserve(now) -> wait | nil, err;
-- settle(now); release(now); count(day) -> requests that day (after
-- counting one); used(day). The state is keyed by API and account, so two
-- accounts never share a budget and one account always does.
local core = require "planapi.core"

local M = {}

local function config_error(msg)
  error(core.error { kind = "config", message = msg }, 4)
end

-- This client's own state: the C GCRA plus a day counter.
local function local_scope(rate)
  local g = core.limiter(rate)
  local day, used = nil, 0
  local lim = { kind = "local" }
  function lim.reserve(_, now) return g:reserve(now) end
  function lim.settle(_, now) g:settle(now) end
  function lim.release(_, now) g:release(now) end
  function lim.count(_, d)
    if d ~= day then day, used = d, 0 end
    used = used + 1
    return used
  end
  function lim.used(_, d) return d == day and used or 0 end
  function lim.info() local i = g:info(); i.kind = "local"; return i end
  function lim.close() end
  return lim
end

-- Redis, and local pacing whenever Redis cannot be reached (only when the
-- user asked for it: by default the client fails closed).
local function with_fallback(primary, rate)
  local fallback = local_scope(rate)
  local lim = { kind = primary.kind, fallback = fallback }
  local function try(method)
    return function(_, a)
      local r, err = primary[method](primary, a)
      if r == nil and err and err.kind == "transport" then
        lim.degraded = true
        return fallback[method](fallback, a)
      end
      lim.degraded = false
      return r, err
    end
  end
  lim.reserve, lim.settle, lim.release = try "reserve", try "settle", try "release"
  lim.count, lim.used = try "count", try "used"
  function lim.info() return primary:info() end
  function lim.close() primary:close() end
  return lim
end

--- limiter.new(spec, { key =, rate = { rate, per, burst, margin }, fallback = "local" | nil })
function M.new(spec, opts)
  local rate = opts.rate
  if spec == nil or spec == "local" then return local_scope(rate) end
  if type(spec) == "table" then
    for _, m in ipairs { "reserve", "settle", "release", "count", "used" } do
      if type(spec[m]) ~= "function" then config_error("a custom limiter needs a " .. m .. " method") end
    end
    return spec
  end
  if type(spec) ~= "string" then
    config_error("option 'limiter' must be \"local\", \"shm:<file>\" or \"redis://...\"")
  end
  local path = spec:match "^shm:(.+)$"
  if path then
    local lim, err = core.shm_limiter { path = path, key = opts.key, rate = rate.rate, per = rate.per,
      burst = rate.burst, margin = rate.margin }
    if not lim then error(err, 3) end
    return lim
  end
  if spec:match "^redis://" then
    local lim = require("planapi.limiter_redis").new {
      url = spec, key = "planapi:" .. opts.key, rate = rate.rate, per = rate.per, burst = rate.burst,
      margin = rate.margin, connect = opts.connect,
    }
    if opts.fallback == "local" then return with_fallback(lim, rate) end
    return lim
  end
  config_error(("option 'limiter' must be \"local\", \"shm:<file>\" or \"redis://...\" (got %q)"):format(spec))
end

return M
