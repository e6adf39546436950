-- limiter/init.lua: the pacing scope, chosen by one option of every client:
--   (not set)                             every process of this OS user on this host, for the
--                                         same account and endpoint (a file in the user's runtime
--                                         dir, see default_path); this client only with an injected clock
--   limiter = "local"                     this client only
--   limiter = "shm:/run/myapp/limits"     every process on this host naming the same file
--   limiter = "redis://127.0.0.1:6379/0"  every process on every host, Redis holding the state
-- Every scope has the same methods: reserve(now) -> wait | nil, err (the
-- slot a request queues for); confirm(now) -> 0 | wait | nil, err (the
-- request is about to be written: 0 records the send, a wait says how long
-- until it keeps the spacing from the last send); settle(now); release(now);
-- count(day) -> requests that day (after counting one); used(day). The
-- state is keyed by API and account, so two accounts never share a budget
-- and one account always does.
local core = require "planapi.core"

local M = {}

local config_error = require "planapi.config_error"

-- This client's own state: the C GCRA plus a day counter.
local function local_scope(rate)
  local g = core.limiter(rate)
  local day, used = nil, 0
  -- gcra: the C state, which the libcurl transport confirms at the send itself.
  local lim = { kind = "local", gcra = g }
  function lim.reserve(_, now) return g:reserve(now) end
  function lim.confirm(_, now) return g:confirm(now) end
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
  lim.confirm = try "confirm"
  lim.count, lim.used = try "count", try "used"
  function lim.info() return primary:info() end
  function lim.close() primary:close() end
  return lim
end

--- The folder of the default shared scope: $PLANAPI_RUNTIME_DIR, else
-- $XDG_RUNTIME_DIR/planapi (the user's own, per login), else
-- /tmp/planapi-<uid>. core.private_dir creates it 0700 and refuses one
-- owned by someone else, open to others, or a symlink: another user must
-- not be able to plant the file that paces our requests.
-- M.runtime_dir, when a program sets it, comes before all of them (the
-- specs point it at their sandbox's run dir, as several run side by side).
function M.default_dir(getenv)
  if M.runtime_dir then return M.runtime_dir end
  getenv = getenv or os.getenv
  local dir = getenv "PLANAPI_RUNTIME_DIR"
  if dir and dir ~= "" then return dir end
  local xdg = getenv "XDG_RUNTIME_DIR"
  if xdg and xdg ~= "" then return xdg .. "/planapi" end
  return ("/tmp/planapi-%d"):format(core.getuid())
end

-- The default scope's key: the API and account, and the endpoint, so two
-- servers (two sandboxes on other ports) never share a budget. Bounded to
-- the shm slot's key size by a digest. Each key gets a file of its own
-- (<api>-<digest>.limits): a file's slots are never given back, and one
-- shared file would fill up with every endpoint the user ever paced.
local function default_key(key, endpoint)
  local digest = core.md5_hex(key .. "\0" .. (endpoint or ""))
  return ("%s#%s"):format(key:sub(1, 60), digest:sub(1, 16)),
    ("%s-%s.limits"):format(key:match "^[%w_]+" or "planapi", digest)
end

local function shm_scope(path, key, rate, private)
  local lim, err = core.shm_limiter { path = path, key = key, rate = rate.rate, per = rate.per,
    burst = rate.burst, margin = rate.margin, private = private }
  if not lim then error(err, 4) end
  return lim
end

--- limiter.new(spec, { key =, endpoint =, rate = { rate, per, burst, margin },
--                      fallback = "local" | nil, shared_default = bool })
-- shared_default: spec nil means the user's host-wide scope (else local).
function M.new(spec, opts)
  local rate = opts.rate
  if spec == nil and opts.shared_default then
    local dir = M.default_dir()
    local ok, err = core.private_dir(dir)
    if not ok then
      config_error(err.message .. " (the default pacing scope lives there: set PLANAPI_RUNTIME_DIR to a folder "
        .. "of your own, or limiter = \"local\")", 3)
    end
    local key, file = default_key(opts.key, opts.endpoint)
    return shm_scope(dir .. "/" .. file, key, rate, true)
  end
  if spec == nil or spec == "local" then return local_scope(rate) end
  if type(spec) == "table" then
    for _, m in ipairs { "reserve", "settle", "release", "count", "used" } do
      if type(spec[m]) ~= "function" then config_error("a custom limiter needs a " .. m .. " method", 3) end
    end
    return spec
  end
  if type(spec) ~= "string" then
    config_error("option 'limiter' must be \"local\", \"shm:<file>\" or \"redis://...\"", 3)
  end
  local path = spec:match "^shm:(.+)$"
  if path then return shm_scope(path, opts.key, rate) end
  if spec:match "^redis://" then
    local lim = require("planapi.limiter.redis").new {
      url = spec, key = "planapi:" .. opts.key, rate = rate.rate, per = rate.per, burst = rate.burst,
      margin = rate.margin, connect = opts.connect,
    }
    if opts.fallback == "local" then return with_fallback(lim, rate) end
    return lim
  end
  config_error(("option 'limiter' must be \"local\", \"shm:<file>\" or \"redis://...\" (got %q)"):format(spec), 3)
end

return M
