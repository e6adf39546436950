-- The job board's worker (a love.thread, started by main.lua): every API call
-- of the board runs here, so the frame loop never waits on the network.
-- A blocking call is fine in this thread: planapi's limiter and retry policy
-- sleep for real here (core.sleep), as in any script, and only this thread
-- waits.
--
-- It talks to main.lua through two channels, with JSON strings (one shape
-- for every message, whatever LÖVE's channels can carry):
--   jobboard.results  <- {"kind":"started","refresh":N} before a refresh,
--                        {"kind":"done","refresh":N,"jobs":[...],"seconds":S,"retries":R}
--                        or {"kind":"done",...,"error":"<one line>"} after it
--   jobboard.commands -> "refresh" (now), "quit"
-- Credentials come from the environment (PLANADO_API_KEY, PLANADO_URL,
-- PLANAPI_CA_FILE) and never leave this thread.
local lua_path, c_path, day, every = ...
package.path, package.cpath = lua_path, c_path

require "love.timer"
local planapi = require "planapi"
local cjson = require "cjson"

local results = love.thread.getChannel "jobboard.results"
local commands = love.thread.getChannel "jobboard.commands"

local retries = 0
local client = planapi.planado {
  api_key = os.getenv "PLANADO_API_KEY",
  url = os.getenv "PLANADO_URL",          -- nil: Planado's own address
  ca_file = os.getenv "PLANAPI_CA_FILE",  -- nil: the system's CAs
  -- Pacing (60 requests a minute) and the retry policy are planapi's
  -- defaults; the board only counts the retries to show them.
  retry = { on_retry = function() retries = retries + 1 end },
}

-- The day's window in UTC, both ends included, as Planado's scheduled_at
-- filter reads it (Planado's API documentation, "Jobs: list").
local function todays_jobs()
  local jobs, err = client.jobs:all {
    scheduled_at = { after = day .. "T00:00:00Z", before = day .. "T23:59:59Z" },
  }
  if not jobs then return nil, err end
  local rows = {}
  for i, job in ipairs(jobs) do
    rows[i] = { uuid = job.uuid, external_id = job.external_id, status = job.status,
      scheduled_at = job.scheduled_at }
  end
  table.sort(rows, function(a, b) return tostring(a.scheduled_at) < tostring(b.scheduled_at) end)
  return rows
end

local function refresh(n)
  results:push(cjson.encode { kind = "started", refresh = n })
  local started, retried = love.timer.getTime(), retries
  local rows, err = todays_jobs()
  local message = { kind = "done", refresh = n, seconds = love.timer.getTime() - started,
    retries = retries - retried }
  if rows then
    message.jobs = rows
  else
    message.error, message.error_kind = tostring(err), err.kind -- one line, never a secret (planapi's errors)
  end
  results:push(cjson.encode(message))
end

-- The first refresh waits for main.lua's word (the window is up); then one
-- every `every` seconds, or at once when asked, until "quit".
local command = commands:demand()
local n = 0
while command ~= "quit" do
  n = n + 1
  refresh(n)
  command = commands:demand(every)
end
client:close()
