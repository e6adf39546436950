-- metrics.lua: counters of the calls of every client they are given to,
-- fed by the client option `hooks` (hooks.lua), rendered as Prometheus
-- text exposition (version 0.0.4):
--   local metrics = planapi.metrics.new()                 -- this process's counts
--   local metrics = planapi.metrics.new { shared = ngx.shared.planapi_metrics } -- every nginx worker's
--   local rest = planapi.planfix_rest { ..., hooks = metrics:hooks() }
--   ngx.print(metrics:render())
-- The series, labelled by api and account (the limiter key's account: the
-- Planfix host or XML account, for Planado a hash of the key, never the key):
local M = {}
M.__index = M

local SERIES = {
  { "planapi_requests_total", "counter", "Attempts sent to an API (retries included)." },
  { "planapi_responses_total", "counter", "HTTP answers received, by status." },
  { "planapi_retries_total", "counter", "Attempts that failed and were tried again, by error kind." },
  { "planapi_errors_total", "counter", "Calls that failed for good, by error kind." },
  { "planapi_limiter_waits_total", "counter", "Attempts the rate limiter held back before sending." },
  { "planapi_limiter_wait_seconds_total", "counter", "Seconds the rate limiter held attempts back." },
  { "planapi_quota_remaining", "gauge", "Requests left in the API's quota, as its last answer said." },
  { "planapi_dry_runs_total", "counter", "Calls a dry run answered without sending." },
}
M.SERIES = SERIES

-- A store of numbers by key: an nginx shared dict (every worker's calls
-- in one place), or a table of this process.
local function table_store()
  local t = {}
  return {
    incr = function(key, n) t[key] = (t[key] or 0) + n end,
    set = function(key, v) t[key] = v end,
    get = function(key) return t[key] end,
    keys = function()
      local keys = {}
      for k in pairs(t) do keys[#keys + 1] = k end
      return keys
    end,
  }
end

local function shared_store(dict)
  return {
    incr = function(key, n)
      local _, err = dict:incr(key, n, 0)
      if err then ngx.log(ngx.WARN, "planapi.metrics: ", err) end
    end,
    set = function(key, v) dict:set(key, v) end,
    get = function(key) return dict:get(key) end,
    keys = function() return dict:get_keys(0) end,
  }
end

--- planapi.metrics.new{ shared = an ngx.shared dict } (opts and shared optional).
function M.new(opts)
  opts = opts or {}
  local store = opts.shared and shared_store(opts.shared) or table_store()
  return setmetatable({ store = store }, M)
end

local function escape(v)
  return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ["\""] = "\\\"", ["\n"] = "\\n" }))
end

-- The series key: name{api="...",account="..."[,extra="..."]}, which is also its line.
local function key(name, ev, extra, value)
  local labels = ('api="%s",account="%s"'):format(escape(ev.api), escape(ev.account or ""))
  if extra then labels = labels .. (',%s="%s"'):format(extra, escape(value)) end
  return name .. "{" .. labels .. "}"
end

local function remaining(store, ev)
  if ev.remaining then store.set(key("planapi_quota_remaining", ev), ev.remaining) end
end

--- The hooks table that feeds these counters (give it to a client's hooks option).
function M:hooks()
  local store = self.store
  return {
    request = function(ev)
      store.incr(key("planapi_requests_total", ev), 1)
      if ev.wait and ev.wait > 0 then
        store.incr(key("planapi_limiter_waits_total", ev), 1)
        store.incr(key("planapi_limiter_wait_seconds_total", ev), ev.wait)
      end
    end,
    response = function(ev)
      store.incr(key("planapi_responses_total", ev, "status", ev.status), 1)
      remaining(store, ev)
    end,
    retry = function(ev)
      store.incr(key("planapi_retries_total", ev, "kind", ev.kind), 1)
      remaining(store, ev)
    end,
    error = function(ev)
      store.incr(key("planapi_errors_total", ev, "kind", ev.kind), 1)
      remaining(store, ev)
    end,
    dry_run = function(ev) store.incr(key("planapi_dry_runs_total", ev), 1) end,
  }
end

--- The value of one series (nil: never counted): m:value("planapi_errors_total",
-- { api = "planado", account = "...", kind = "http" }).
function M:value(name, labels)
  local extra
  for k in pairs(labels) do
    if k ~= "api" and k ~= "account" then extra = k end
  end
  return self.store.get(key(name, labels, extra, extra and labels[extra]))
end

local function number(v)
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return ("%d"):format(v) end
  return ("%.17g"):format(v)
end

--- The counters as Prometheus text exposition (Content-Type:
-- text/plain; version=0.0.4): every family's HELP and TYPE, then its series.
function M:render()
  local by_name = {}
  for _, k in ipairs(self.store.keys()) do
    local name = k:match "^([%w_]+){"
    if name then
      by_name[name] = by_name[name] or {}
      table.insert(by_name[name], k)
    end
  end
  local out = {}
  for _, s in ipairs(SERIES) do
    local name = s[1]
    out[#out + 1] = ("# HELP %s %s\n# TYPE %s %s\n"):format(name, s[3], name, s[2])
    local keys = by_name[name] or {}
    table.sort(keys)
    for _, k in ipairs(keys) do
      local v = self.store.get(k)
      if v then out[#out + 1] = k .. " " .. number(v) .. "\n" end
    end
  end
  return table.concat(out)
end

M.CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

return M
