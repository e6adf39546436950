-- bench_util.lua: small helpers shared by the bench/ scripts.
local M = {}

function M.median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

function M.thousands(n)
  local s = tostring(math.floor(n + 0.5))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

function M.shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- This process's memory from /proc/self/status, in MiB: VmRSS, VmHWM.
function M.rss()
  local f = assert(io.open "/proc/self/status")
  local text = f:read "a"
  f:close()
  return tonumber(text:match "VmRSS:%s*(%d+)") / 1024, tonumber(text:match "VmHWM:%s*(%d+)") / 1024
end

--- Writes OUTDIR/NAME.md (the lines of md) and OUTDIR/NAME.targets (one
-- line per target: "met|missed|partly<TAB>target<TAB>measured"), and
-- prints the section.
function M.write_section(outdir, name, md, targets)
  local text = table.concat(md, "\n") .. "\n"
  local f = assert(io.open(outdir .. "/" .. name .. ".md", "w"))
  f:write(text)
  f:close()
  f = assert(io.open(outdir .. "/" .. name .. ".targets", "w"))
  for _, t in ipairs(targets or {}) do
    local status = t[1]
    if type(status) == "boolean" then status = status and "met" or "missed" end
    f:write(status, "\t", t[2], "\t", t[3], "\n")
  end
  f:close()
  io.write(text)
  -- A smoke run's sizes are too small to judge a target: say so.
  local label = os.getenv "BENCH_SMOKE" == "1" and "smoke, not judged" or "target"
  for _, t in ipairs(targets or {}) do
    local status = t[1]
    if type(status) == "boolean" then status = status and "met" or "missed" end
    io.write(("%s %s: %s (%s)\n"):format(label, status, t[2], t[3]))
  end
  io.write "\n"
end

--- Start n bench/limiter_worker.lua processes sharing `scope`, one second
-- from now (all have connected by then), for `window` seconds, and wait for
-- them. The sandbox is reset and enforces one request per `interval`.
-- opts (optional): latency = seconds the sandbox holds every new
-- connection, fresh_every = each process sends every Nth request on a new one.
function M.run_limiter_workers(sandbox, scope, n, window, interval, margin, opts)
  local core = require "planapi.core"
  opts = opts or {}
  sandbox.reset()
  sandbox.config { rate = { enabled = true, interval = interval }, latency = { connect = opts.latency or 0 } }
  local start_at = core.monotime() + 1.5
  local pipes = {}
  for i = 1, n do
    pipes[i] = assert(io.popen(("lua5.4 bench/limiter_worker.lua %s %.6f %.6f 1 %s %s %s %d")
      :format(scope, start_at, start_at + window, interval, margin, opts.fresh_every or "", i)))
  end
  for _, p in ipairs(pipes) do
    p:read "a"
    p:close()
  end
  return start_at
end

return M
