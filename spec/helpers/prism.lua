-- prism.lua: Stoplight Prism (tools/prism, installed from its committed
-- package-lock.json by `npm ci`) as a mock server of the official Planfix
-- REST spec on loopback, and its verdict on a request.
--   local prism = require "prism"
--   local server = prism.start(spec_path)   -- { url = "http://127.0.0.1:PORT/", ... }
--   prism.violations(res)                   -- nil, or the request violations Prism reports
--   server:stop()
local cjson = require("cjson").new()
local portable = require "portable"

local M = {}

M.DIR = "tools/prism"
M.BIN = M.DIR .. "/node_modules/.bin/prism"

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Why Prism cannot run here (nil when it can): the message says what to do.
function M.missing()
  local f = io.open(M.BIN, "rb")
  if f then
    f:close()
    return nil
  end
  return "Stoplight Prism is not installed in " .. M.DIR .. ": run `tools/prism/install` (npm ci from its "
    .. "committed package-lock.json; needs node and npm), as `make test` does"
end

local function wait_listening(log_path, deadline_s)
  local waited = 0
  while waited < deadline_s do
    local log = portable.read_file(log_path) or ""
    if log:find("Prism is listening", 1, true) then return true end
    if log:find("EADDRINUSE", 1, true) then return false, "port in use" end
    portable.execute "sleep 0.2"
    waited = waited + 0.2
  end
  return false, "Prism did not start within " .. deadline_s .. " s: " .. (portable.read_file(log_path) or "")
end

--- Start Prism in mock mode (request validation is always on; violations
-- are reported, not turned into 5xx by --errors, so a response the spec's
-- own examples get wrong does not hide the verdict on the request).
function M.start(spec_path)
  local why = M.missing()
  if why then error(why, 2) end
  local dir = portable.tmpdir()
  local log_path, pid_path = dir .. "/prism.log", dir .. "/prism.pid"
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for _ = 1, 5 do
    local port = math.random(20000, 59999)
    portable.execute(("%s mock -h 127.0.0.1 -p %d %s > %s 2>&1 & echo $! > %s"):format(
      shell_quote(M.BIN), port, shell_quote(spec_path), shell_quote(log_path), shell_quote(pid_path)))
    local ok, err = wait_listening(log_path, 60)
    local pid = (portable.read_file(pid_path) or ""):match "%d+"
    if ok then
      return {
        url = ("http://127.0.0.1:%d/"):format(port), pid = pid, log = log_path,
        stop = function()
          if pid then portable.execute("kill " .. pid .. " 2>/dev/null") end
          portable.rmtree(dir)
        end,
      }
    end
    if pid then portable.execute("kill " .. pid .. " 2>/dev/null") end
    if err ~= "port in use" then
      portable.rmtree(dir)
      error(err, 2)
    end
  end
  portable.rmtree(dir)
  error("no free port for Prism after 5 tries", 2)
end

local function header(res, name)
  for k, v in pairs(res.headers or {}) do
    if k:lower() == name then return v end
  end
  return nil
end

--- Prism's verdict on the request behind res: nil when it found nothing
-- wrong, else a list of its messages. Prism says so in two ways: an
-- `sl-violations` header (entries located in the "request"), or its own
-- problem document (a 4xx of type https://stoplight.io/prism/errors#...,
-- e.g. UNPROCESSABLE_ENTITY with the `validation` list, or NO_PATH_MATCHED).
function M.violations(res)
  local found = {}
  local raw = header(res, "sl-violations")
  if raw then
    local ok, list = pcall(cjson.decode, raw)
    if not ok then return { "unreadable sl-violations header" } end
    for _, v in ipairs(list) do
      if v.location and v.location[1] == "request" then found[#found + 1] = tostring(v.message) end
    end
  end
  local ctype = header(res, "content-type") or ""
  if ctype:find("problem+json", 1, true) then
    local ok, doc = pcall(cjson.decode, res.body or "")
    -- NOT_ACCEPTABLE is Prism's content negotiation of its own mock answer
    -- (a 302 download has no JSON to offer for Accept: application/json),
    -- not a verdict on the request: the spec declares no Accept header.
    if ok and type(doc) == "table" and tostring(doc.type):find("stoplight.io/prism/errors", 1, true)
        and not tostring(doc.type):find("NOT_ACCEPTABLE", 1, true) then
      local listed = type(doc.validation) == "table" and doc.validation or {}
      for _, v in ipairs(listed) do found[#found + 1] = tostring(v.message) end
      if #listed == 0 then found[#found + 1] = tostring(doc.title) .. ": " .. tostring(doc.detail) end
    end
  end
  if #found == 0 then return nil end
  return found
end

return M
