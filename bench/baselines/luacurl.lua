-- luacurl.lua: baseline (d) of bench/percall.lua. What a Lua user writes
-- with Lua-cURL (Debian lua-curl 0.3, built for Lua 5.1/5.2 only, so this
-- runs under LuaJIT, with libcurl-gnutls): one easy handle reused (libcurl
-- keeps the connection alive), the body collected by a write callback and
-- parsed whole by lxp.lom (XML) or cjson (JSON).
--   luajit luacurl.lua PARSE METHOD URL CAFILE CALLS BODYFILE|- [HEADER...]
-- Prints "cpu_us <CPU microseconds per call> wall_us <...> bytes <answer size>".
local curl = require "curl"
local lom = require "lxp.lom"
local cjson = require "cjson"

local parse, method, url, cafile, calls, bodyfile = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5]), arg[6]
local WARMUP = 3
local headers = {}
for i = 7, #arg do headers[#headers + 1] = arg[i] end

local h = curl.easy_init()
h:setopt(curl.OPT_URL, url)
h:setopt(curl.OPT_CAINFO, cafile)
h:setopt(curl.OPT_HTTPHEADER, headers)
if bodyfile ~= "-" then
  local f = assert(io.open(bodyfile, "rb"))
  h:setopt(curl.OPT_POSTFIELDS, f:read "*a")
  f:close()
end
if method ~= "GET" and method ~= "POST" then h:setopt(curl.OPT_CUSTOMREQUEST, method) end
local parts, status_line
h:setopt(curl.OPT_WRITEFUNCTION, function(s) parts[#parts + 1] = s; return #s end)
h:setopt(curl.OPT_HEADERFUNCTION, function(s)
  if s:match "^HTTP/" then status_line = s end
  return #s
end)

local function request_once()
  parts = {}
  assert(h:perform())
  assert(status_line:match "^HTTP/%S+ 200", status_line)
  return table.concat(parts)
end

local wall = require("socket").gettime -- luasocket: only the clock
local c0, w0, size
for i = 1, WARMUP + calls do
  if i == WARMUP + 1 then c0, w0 = os.clock(), wall() end
  local data = request_once()
  size = #data
  local doc
  if parse == "xml" then doc = assert(lom.parse(data)) else doc = cjson.decode(data) end
  assert(type(doc) == "table")
end
print(("cpu_us %.1f wall_us %.1f bytes %d"):format((os.clock() - c0) / calls * 1e6,
  (wall() - w0) / calls * 1e6, size))
