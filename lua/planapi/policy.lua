-- policy.lua: when to retry a failed call, and how long to wait first.
-- One policy object serves every planapi client. It never sleeps itself:
-- it answers "wait N seconds" or "give up", and the caller sleeps through
-- its injected sleep (ngx.sleep in OpenResty, a fake in specs).

local Policy = {}
Policy.__index = Policy

local DEFAULTS = {
  attempts = 4,     -- tries in all, the first one included
  base = 0.5,       -- first backoff ceiling, seconds
  cap = 30,         -- largest backoff ceiling, seconds
  max_wait = 120,   -- a Retry-After longer than this ends the call instead
}

local config_error = require "planapi.config_error"

--- policy.new{ attempts =, base =, cap =, max_wait =, random =, on_retry = }
-- random: function() -> [0, 1) (math.random by default), for reproducible specs.
-- on_retry(err, attempt, wait): called before each wait, to log or to veto
-- (return false to stop retrying).
function Policy.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then config_error("retry policy options must be a table", 2) end
  local self = setmetatable({}, Policy)
  for k in pairs(opts) do
    if DEFAULTS[k] == nil and k ~= "random" and k ~= "on_retry" then
      config_error(("unknown retry option '%s' (valid: attempts, base, cap, max_wait, random, on_retry)")
        :format(tostring(k)), 2)
    end
  end
  for k, dflt in pairs(DEFAULTS) do
    local v = opts[k]
    if v == nil then v = dflt end
    if type(v) ~= "number" or v < 0 or v ~= v then
      config_error(("retry option '%s' must be a non-negative number"):format(k), 2)
    end
    self[k] = v
  end
  if self.attempts < 1 then config_error("retry option 'attempts' must be at least 1", 2) end
  self.random = opts.random or math.random
  self.on_retry = opts.on_retry
  if type(self.random) ~= "function" then config_error("retry option 'random' must be a function", 2) end
  if self.on_retry ~= nil and type(self.on_retry) ~= "function" then
    config_error("retry option 'on_retry' must be a function", 2)
  end
  return self
end

--- Is it safe to send this request again?
-- An idempotent request always is. Another one (a create, a comment) only
-- when the server certainly did not act on it: nothing was sent, or the
-- server refused it before doing anything (rate limit, "object busy").
local function safe_to_repeat(err, idempotent)
  return idempotent or err.request_sent == false or err.kind == "rate_limit" or err.rejected == true
end

--- policy:delay(err, attempt, idempotent) -> seconds | nil
-- attempt is the number of the try that just failed (1 for the first).
function Policy:delay(err, attempt, idempotent)
  if not err.retryable or attempt >= self.attempts then return nil end
  if not safe_to_repeat(err, idempotent) then return nil end
  local wait
  if type(err.retry_after) == "number" then
    if err.retry_after > self.max_wait then return nil end
    wait = err.retry_after
  else
    -- Exponential backoff with full jitter: spreads retries of many
    -- clients over the whole window instead of stampeding together.
    local ceiling = math.min(self.cap, self.base * 2 ^ (attempt - 1))
    wait = self.random() * ceiling
  end
  if self.on_retry and self.on_retry(err, attempt, wait) == false then return nil end
  return wait
end

function Policy.is_policy(v)
  return getmetatable(v) == Policy
end

return Policy
