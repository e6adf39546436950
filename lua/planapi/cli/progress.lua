-- cli/progress.lua: a one-line progress bar on stderr for --all, only
-- when stderr is a terminal (a pipe or a log gets nothing extra).
--   1,234 items · 13 pages · 1.0 pages/s · ETA 0:42
-- The ETA needs a total (the XML API's totalCount) and comes from the rate
-- limit: the pages still to fetch times the interval between requests.
local M = {}

local function eta_text(seconds)
  if not seconds then return "" end
  seconds = math.floor(seconds + 0.5)
  if seconds >= 3600 then
    return (" · ETA %d:%02d:%02d"):format(math.floor(seconds / 3600), math.floor(seconds % 3600 / 60), seconds % 60)
  end
  return (" · ETA %d:%02d"):format(math.floor(seconds / 60), seconds % 60)
end

local function thousands(n)
  local s = tostring(math.floor(n))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

--- progress.new{ stream = io.stderr, enabled = bool, clock = fn, interval = seconds per request }
function M.new(opts)
  local p = { stream = opts.stream, enabled = opts.enabled, clock = opts.clock, interval = opts.interval,
    items = 0, pages = 0, started = opts.clock(), width = 0 }
  function p.page(_, count, total, page_size)
    p.pages = p.pages + 1
    p.items = p.items + count
    if not p.enabled then return end
    local elapsed = math.max(p.clock() - p.started, 1e-6)
    local eta
    if total and page_size and page_size > 0 then
      local pages_left = math.max(0, math.ceil((total - p.items) / page_size))
      eta = pages_left * math.max(p.interval or 0, elapsed / p.pages)
    end
    local text = ("%s items · %d pages · %.1f pages/s%s"):format(thousands(p.items), p.pages, p.pages / elapsed,
      eta_text(eta))
    local pad = math.max(0, p.width - #text)
    p.width = #text
    p.stream:write("\r", text, (" "):rep(pad))
    p.stream:flush()
  end
  function p.done()
    if p.enabled and p.pages > 0 then
      p.stream:write "\n"
      p.stream:flush()
    end
  end
  return p
end

return M
