-- A small Planado job board on LÖVE 11 (LuaJIT inside): today's jobs and
-- their status, refreshed every minute. Every API call runs in a love.thread
-- (worker.lua) and the results come back through a channel, so the frame
-- loop never waits on the network: the board keeps drawing while Planado
-- thinks.
--
--   make LUA=luajit                                  # build/luajit/planapi/core.so
--   PLANADO_API_KEY=... love examples/love
--
-- Environment: PLANADO_API_KEY, PLANADO_URL and PLANAPI_CA_FILE (read by
-- the worker only); PLANAPI_ROOT, the planapi checkout (default: two
-- folders up from this one); JOBBOARD_DAY (YYYY-MM-DD, default today in
-- UTC); JOBBOARD_EVERY (seconds between refreshes, default 60).
-- For a test run (spec/66): JOBBOARD_REPORT, a file that gets what the
-- worker sent and the frame times (JSON) when the board quits;
-- JOBBOARD_REFRESHES / JOBBOARD_SECONDS, quit after M refreshes or N
-- seconds; JOBBOARD_SCREENSHOT, a PNG of the last frame, taken before
-- quitting.

-- LÖVE's require finds the game's own files; planapi's Lua half and its
-- LuaJIT core come from the checkout, by absolute path.
local function planapi_paths()
  local root = os.getenv "PLANAPI_ROOT"
  if not root then
    local game = love.filesystem.getSource()
    if game:sub(1, 1) ~= "/" then game = love.filesystem.getWorkingDirectory() .. "/" .. game end
    root = game .. "/../.."
  end
  return root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path,
    root .. "/build/luajit/?.so;" .. package.cpath
end
package.path, package.cpath = planapi_paths()
local cjson = require "cjson"

local settings = {
  day = os.getenv "JOBBOARD_DAY" or os.date "!%Y-%m-%d",
  every = tonumber(os.getenv "JOBBOARD_EVERY") or 60,
  report = os.getenv "JOBBOARD_REPORT",
  refreshes = tonumber(os.getenv "JOBBOARD_REFRESHES"),
  seconds = tonumber(os.getenv "JOBBOARD_SECONDS"),
  screenshot = os.getenv "JOBBOARD_SCREENSHOT",
}
-- Frames drawn before the first refresh: the window is up and drawing.
local WARM_UP_FRAMES = 5

local board = {
  started = 0, frame = 0, busy_since = nil, last = nil, slowest = nil, refreshes = {}, error = nil, quitting = false,
  -- frame times: the count and longest of all, and each one drawn while a call was in flight
  frames = { count = 0, max = 0, busy_max = 0, busy_ms = {}, busy_own_ms = {} },
}
local results = love.thread.getChannel "jobboard.results"
local commands = love.thread.getChannel "jobboard.commands"
local worker

local STATUS_COLOURS = {
  posted = { 0.55, 0.55, 0.6 }, scheduled = { 0.25, 0.5, 0.95 }, published = { 0.3, 0.7, 0.95 },
  en_route = { 0.95, 0.7, 0.2 }, started = { 0.95, 0.55, 0.15 }, suspended = { 0.8, 0.3, 0.8 },
  finished = { 0.3, 0.75, 0.35 },
}

-- LÖVE rasterizes a glyph the first time it is drawn: draw the board's
-- characters once before the first frame (love.run clears it), so that no
-- frame pays for them later, such as the first one with the spinner's text.
local function cache_glyphs()
  love.graphics.print("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,;:-_()/…")
end

function love.load()
  board.started = love.timer.getTime()
  love.graphics.setBackgroundColor(0.1, 0.11, 0.13)
  cache_glyphs()
  worker = love.thread.newThread "worker.lua"
  worker:start(package.path, package.cpath, settings.day, settings.every)
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

local function write_report(extra)
  if not settings.report then return end
  local f = board.frames
  local report = {
    day = settings.day, refreshes = board.refreshes, error = board.error,
    frames = { count = f.count, max_ms = f.max * 1000, busy_ms = f.busy_ms, busy_own_ms = f.busy_own_ms },
  }
  for k, v in pairs(extra or {}) do report[k] = v end
  write_file(settings.report, cjson.encode(report))
end

-- Quit, after a screenshot of the last frame when one is asked for.
local function finish()
  if board.quitting then return end
  board.quitting = true
  if not settings.screenshot then
    write_report()
    return love.event.quit()
  end
  love.graphics.captureScreenshot(function(image)
    write_file(settings.screenshot, image:encode("png"):getString())
    write_report { screenshot = settings.screenshot }
    love.event.quit()
  end)
end

local function receive(message)
  local m = cjson.decode(message)
  if m.kind == "started" then
    board.busy_since = love.timer.getTime()
    return
  end
  board.busy_since = nil
  m.at = love.timer.getTime() - board.started
  board.refreshes[#board.refreshes + 1] = m
  if m.error then board.error = m.error else board.last, board.error = m, nil end
  if not board.slowest or m.seconds > board.slowest.seconds then board.slowest = m end
end

-- On Linux, the seconds this thread has spent ready to run but waiting for
-- a CPU (the scheduler's run delay): a frame stretched by a busy machine is
-- not a frame loop that waited, and the report tells the two apart.
local function run_delay()
  local f = io.open "/proc/thread-self/schedstat"
  if not f then return 0 end
  local line = f:read "*l"
  f:close()
  return (tonumber(line and line:match "^%d+ (%d+)") or 0) / 1e9
end

local function count_frame(dt)
  local f = board.frames
  local delay = run_delay()
  local own = dt - (delay - (f.delay or delay)) -- the frame without the time the OS kept it off the CPU
  f.delay = delay
  f.count, f.max = f.count + 1, math.max(f.max, dt)
  if board.busy_since then
    f.busy_max = math.max(f.busy_max, dt)
    f.busy_ms[#f.busy_ms + 1] = dt * 1000
    f.busy_own_ms[#f.busy_own_ms + 1] = own * 1000
  end
end

function love.update(dt)
  board.frame = board.frame + 1
  count_frame(dt)
  if board.frame == WARM_UP_FRAMES then commands:push "refresh" end
  local message = results:pop()
  while message do
    receive(message)
    message = results:pop()
  end
  local enough = settings.refreshes and #board.refreshes >= settings.refreshes
  local late = settings.seconds and love.timer.getTime() - board.started >= settings.seconds
  if enough or late then finish() end
end

function love.keypressed(key)
  if key == "escape" then love.event.quit() end
  if key == "r" then commands:push "refresh" end
end

-- A worker that died (a Lua error in worker.lua) says so on the board.
function love.threaderror(_, message)
  board.error = "worker: " .. tostring(message):gsub("\n.*", "")
  board.busy_since = nil
end

function love.quit()
  commands:clear()
  commands:push "quit"
  -- The worker is waiting for a command or finishing one call (its timeout bounds it).
  if worker then worker:wait() end
end

-- In a test run an error ends the run with a report, instead of LÖVE's
-- error screen that waits for a key.
local default_errorhandler = love.errorhandler
function love.errorhandler(message)
  if not settings.report then return default_errorhandler(message) end
  write_report { fatal = tostring(message) }
  return nil
end

local function draw_spinner(x, y)
  local t = love.timer.getTime() - board.busy_since
  love.graphics.setColor(0.95, 0.8, 0.3)
  love.graphics.arc("line", "open", x, y, 7, t * 6, t * 6 + 4.5)
  love.graphics.print(("refreshing… %.1f s"):format(t), x + 14, y - 8)
end

local function draw_header()
  local g = love.graphics
  g.setColor(1, 1, 1)
  g.print("Planado jobs of " .. settings.day, 20, 16, 0, 1.4)
  local last = board.last
  g.setColor(0.7, 0.72, 0.78)
  if last then
    local slow = board.slowest
    g.print(("%d jobs; refresh %d took %.2f s; the slowest: refresh %d, %.2f s, %d %s"):format(#last.jobs,
      last.refresh, last.seconds, slow.refresh, slow.seconds, slow.retries, slow.retries == 1 and "retry" or "retries"),
      20, 44)
  else
    g.print("waiting for the first answer", 20, 44)
  end
  if board.busy_since then draw_spinner(470, 52) end
  if board.error then
    g.setColor(0.95, 0.35, 0.3)
    g.printf(board.error, 20, 64, 600)
  end
end

local function draw_job(job, y)
  local g = love.graphics
  g.setColor(STATUS_COLOURS[job.status] or { 0.9, 0.9, 0.9 })
  g.rectangle("fill", 20, y + 2, 96, 16, 4, 4)
  g.setColor(0.05, 0.05, 0.08)
  g.print(tostring(job.status), 26, y + 3)
  g.setColor(0.92, 0.92, 0.95)
  local when = tostring(job.scheduled_at):match "T(%d%d:%d%d)" or "--:--"
  g.print(when .. "  " .. tostring(job.external_id or job.uuid), 128, y + 3)
end

function love.draw()
  draw_header()
  local jobs = board.last and board.last.jobs or {}
  for i, job in ipairs(jobs) do
    if i > 14 then break end
    draw_job(job, 70 + i * 22)
  end
  local f = board.frames
  love.graphics.setColor(0.5, 0.52, 0.58)
  love.graphics.print(("%d frames; %d while a call waited, the longest %.0f ms"):format(f.count, #f.busy_ms,
    f.busy_max * 1000), 20, 376)
end
