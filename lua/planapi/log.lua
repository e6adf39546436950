-- log.lua: call events as JSON Lines, one object per event per line, built
-- on the client option `hooks` (hooks.lua):
--   local log = require("planapi.log")
--   local rest = planapi.planfix_rest { ..., hooks = log.jsonl(io.stderr) }
--   log.jsonl("/var/log/planapi.jsonl")          -- a path: appended to
--   log.jsonl(function(line) ngx.log(ngx.INFO, line) end, { bodies = 2048 })
-- A line holds the event's fields (hooks.lua lists them) and `time`, the
-- wall clock in UTC (RFC 3339). It never holds a credential: the events
-- carry none, and a body (only with bodies = true or N) is redacted.
local core = require("planapi.core")
local config_error = require("planapi.config_error")

local M = {}

-- The line writer of a destination: a function, a file handle, or a path.
local function writer_of(dest)
  if type(dest) == "function" then return dest end
  if type(dest) == "string" then
    local f, err = io.open(dest, "a")
    if not f then config_error("planapi.log.jsonl: cannot open the log file: " .. tostring(err), 4) end
    dest = f
  end
  if (type(dest) == "userdata" or type(dest) == "table") and dest.write then
    return function(line)
      dest:write(line, "\n")
      dest:flush()
    end
  end
  config_error("planapi.log.jsonl takes a file, a path or a function(line), got " .. type(dest), 4)
end

--- A hooks table writing every event as one JSON line to dest (a file
-- handle, a path opened for appending, or a function(line) given the line
-- without its newline). opts: { bodies = true | N } (as the hooks' bodies).
function M.jsonl(dest, opts)
  local write = writer_of(dest)
  opts = opts or {}
  if opts.bodies ~= nil and type(opts.bodies) ~= "boolean" and type(opts.bodies) ~= "number" then
    config_error("planapi.log.jsonl option 'bodies' must be a boolean or a number of bytes", 2)
  end
  local function line(ev)
    local out = { time = os.date("!%Y-%m-%dT%H:%M:%SZ") } -- a copy: the other sinks see the event as it was
    for k, v in pairs(ev) do out[k] = v end
    write(core.json_encode(out))
  end
  return { request = line, response = line, retry = line, error = line, dry_run = line, bodies = opts.bodies }
end

return M
