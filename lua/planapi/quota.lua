-- quota.lua: the account's daily request budget, so that a long job stops
-- cleanly before the API refuses it (Planfix: 20,000 / 50,000 / 100,000 a
-- day by plan; code 22 (REST) or 0007 (XML) once it is spent).
--
--   quota = { limit = 20000, reserve = 200, utc_offset = 3 }
--
-- What is left is the smallest of: the limit minus the requests counted
-- today (shared by every process when the limiter is shm: or redis://),
-- and the last X-RateLimit-Remaining minus the requests made since it
-- changed (the header is approximate and updated about every 10 minutes).
-- When it is at or below `reserve`, or the API said the quota is spent,
-- the next call returns a `quota` error before sending anything, with
-- retry_after = the seconds until the day resets.
local core = require "planapi.core"

local Quota = {}
Quota.__index = Quota

local config_error = require "planapi.config_error"

--- Quota.new(opts, counter, wall_clock)
-- counter: the limiter (its count/used methods); wall_clock: os.time by default.
function Quota.new(opts, counter, wall_clock)
  if type(opts) ~= "table" then config_error("option 'quota' must be a table or false", 3) end
  for k, v in pairs(opts) do
    if k ~= "limit" and k ~= "reserve" and k ~= "utc_offset" then
      config_error(("unknown quota option '%s' (valid: limit, reserve, utc_offset)"):format(tostring(k)), 3)
    end
    if type(v) ~= "number" then config_error(("quota option '%s' must be a number"):format(k), 3) end
  end
  return setmetatable({
    limit = opts.limit, reserve = opts.reserve or 0, offset = (opts.utc_offset or 0) * 3600,
    counter = counter, time = wall_clock or os.time,
  }, Quota)
end

-- The quota day (YYYYMMDD in the configured offset) and the seconds to its end.
function Quota:day()
  local t = self.time() + self.offset
  local day = tonumber(os.date("!%Y%m%d", t))
  return day, 86400 - t % 86400
end

--- What is known to be left today (nil when nothing is known) | nil, err
-- when the shared counter cannot be read (a Redis out of reach).
function Quota:remaining()
  local day = self:day()
  if self.spent_day == day then return 0 end
  local left
  if self.limit then
    local used, err = self.counter:used(day)
    if used == nil then return nil, err end
    left = self.limit - used
  end
  if self.header and self.header_day == day then
    local by_header = self.header - self.since_header
    if left == nil or by_header < left then left = by_header end
  end
  return left
end

--- Before a request: nil, or the error to return instead of sending (the
-- quota's, or the shared counter's when it cannot be read: fail closed).
function Quota:check()
  local left, err = self:remaining()
  if err then return err end
  if left ~= nil and left <= self.reserve then
    local _, reset = self:day()
    return core.error { kind = "quota", retryable = false, retry_after = reset, remaining = math.max(left, 0),
      message = ("the daily request budget is spent (%d left, %d kept in reserve); it resets in %d s")
        :format(math.max(left, 0), self.reserve, reset) }
  end
  return nil
end

--- After a request that reached the server: count it and learn from the
-- answer (res: the response, or nil; err: the error, or nil).
function Quota:record(res, err)
  local day = self:day()
  self.counter:count(day)
  local h = res and res.headers and res.headers["x-ratelimit-remaining"]
  local n = h and tonumber(h:match "^%s*(%d+)")
  if n then
    if n ~= self.header or self.header_day ~= day then
      self.header, self.header_day, self.since_header = n, day, 0
    else
      self.since_header = self.since_header + 1
    end
  elseif self.header_day == day then
    self.since_header = self.since_header + 1
  end
  if err and err.kind == "quota" and err.retry_after == nil then
    -- The API said so: nothing more today, whatever the counters say.
    self.spent_day = day
    local _, reset = self:day()
    err.retry_after = reset
  end
end

return Quota
