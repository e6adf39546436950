-- A plugin for examples/embed/host.c: the host has linked planapi's C core
-- in and preloaded it; this script lists Planfix tasks through it.
--
--   PLANFIX_REST_URL=... PLANFIX_TOKEN=... [PLANAPI_CA_FILE=...] \
--     build/embed/planapi-host examples/embed/plugin.lua [HOW_MANY_NAMES]
--
-- Credentials come from the environment only.

-- The host registered the core before this script ran: it is in
-- package.preload and already in package.loaded, so require never looks in
-- package.cpath for a planapi/core.so.
local preloaded = package.preload["planapi.core"] ~= nil
local loaded_before = package.loaded["planapi.core"]
local core = require "planapi.core"
local planapi = require "planapi"

-- On Linux, whether a core.so was mapped from disk (it must not be).
local function core_so_mapped()
  local f = io.open "/proc/self/maps"
  if not f then return nil end
  local text = f:read "a"
  f:close()
  return text:find("planapi/core.so", 1, true) ~= nil
end

print(("preloaded core: %s (version %s, libcurl %s)"):format(
  tostring(preloaded and loaded_before ~= nil and core == loaded_before and planapi.core == core),
  core.version, core.curl_version))
local mapped = core_so_mapped()
if mapped ~= nil then print("core.so loaded from disk: " .. tostring(mapped)) end

local url, token = os.getenv "PLANFIX_REST_URL", os.getenv "PLANFIX_TOKEN"
if not url or not token then
  error("set PLANFIX_REST_URL and PLANFIX_TOKEN (and PLANAPI_CA_FILE for a private CA)", 0)
end

local rest = planapi.planfix_rest {
  base_url = url,
  token = token,
  ca_file = os.getenv "PLANAPI_CA_FILE",
}

local show = tonumber((...)) or 3
local count, names = 0, {}
-- each() raises the error object on a failed page: the host prints it.
for task in rest.tasks:each { fields = "id,name" } do
  count = count + 1
  if count <= show then names[#names + 1] = task.name end
end
rest:close()

print(("tasks: %d"):format(count))
for i, name in ipairs(names) do print(("  %d. %s"):format(i, name)) end
