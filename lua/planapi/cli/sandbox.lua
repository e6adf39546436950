-- cli/sandbox.lua: `planapi sandbox start|stop|status [--dir DIR]`, the
-- emulator of the three APIs (the project's sandbox: nginx with
-- lua-nginx-module) for a user's own integration tests.
--
--   eval "$(planapi sandbox start)"    then any script or `planapi ...` talks to it
--
-- start and status print `export` lines: the variables the CLI and the
-- examples read (PLANFIX_*, PLANADO_*, PLANAPI_CA_FILE: see cli/profiles.lua),
-- so a script runs against the sandbox unchanged, and the sandbox's own
-- PLANAPI_SANDBOX_* (its control API, test receivers, ports). The sandbox's
-- files are found beside this module: installed by the rock under
-- <lua dir>/planapi/sandbox/, or the checkout's sandbox/.
local core = require "planapi.core"
local args = require "planapi.cli.args"

local M = {}

-- The client variables and where their values come from: the sandbox's
-- env.lua (`env`) or its default credentials (sandbox/lua/sandbox/credentials.lua).
local CLIENT_VARS = {
  { "PLANFIX_REST_URL", function(env) return env.rest_url end },
  { "PLANFIX_TOKEN", function(_, cred) return cred.rest_token end },
  { "PLANFIX_ACCOUNT", function(_, cred) return cred.xml.account end },
  { "PLANFIX_API_KEY", function(_, cred) return cred.xml.api_key end },
  { "PLANFIX_XML_TOKEN", function(_, cred) return cred.xml.token end },
  { "PLANFIX_PRIVATE_KEY", function(_, cred) return cred.xml.private_key end },
  { "PLANFIX_XML_URL", function(env) return env.xml_url end },
  { "PLANADO_URL", function(env) return env.planado_url end },
  { "PLANADO_API_KEY", function(_, cred) return cred.planado_api_key end },
  { "PLANAPI_CA_FILE", function(env) return env.ca_file end },
}

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function readable(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- os.execute's success under Lua 5.4 (true) and LuaJIT (the raw status, 0).
local function succeeded(cmd)
  local status = os.execute(cmd)
  return status == true or status == 0
end

--- The folder of the sandbox's files (run, conf/, lua/), or nil.
function M.root()
  local here = debug.getinfo(1, "S").source:match "^@(.*)/[^/]*$" or "."
  -- Installed: <lua dir>/planapi/cli/ beside <lua dir>/planapi/sandbox/;
  -- a checkout: lua/planapi/cli/ under the repository's sandbox/.
  for _, dir in ipairs { here .. "/../sandbox", here .. "/../../../sandbox" } do
    if readable(dir .. "/run") and readable(dir .. "/lua/sandbox/credentials.lua") then return dir end
  end
  return nil
end

-- The run dir: --dir, else PLANAPI_SANDBOX_DIR (what start printed, so a
-- later stop in that shell finds it), else the user's runtime folder, else
-- ~/.cache. Never under the installed files, which may not be writable.
local function run_dir(parsed, getenv)
  local dir = parsed.options["--dir"] or getenv "PLANAPI_SANDBOX_DIR"
  if dir and dir ~= "" then return dir end
  local xdg = getenv "XDG_RUNTIME_DIR"
  if xdg and xdg ~= "" then return xdg .. "/planapi-sandbox" end
  local home = getenv "HOME"
  if not (home and home ~= "") then args.usage_error "no folder for the sandbox: give --dir (or set HOME)" end
  succeeded("mkdir -p " .. shell_quote(home .. "/.cache"))
  return home .. "/.cache/planapi-sandbox"
end

-- The folder holds the test CA's private key, which the user's tests then
-- trust: ours alone (0700, no symlink), as the limiter's runtime folder.
local function private_run_dir(parsed, getenv)
  local dir = run_dir(parsed, getenv)
  local ok, err = core.private_dir(dir)
  if not ok then args.usage_error(err.message or tostring(err)) end
  return dir
end

local function load_table(path)
  local chunk = loadfile(path)
  if not chunk then return nil end
  local ok, t = pcall(chunk)
  return ok and type(t) == "table" and t or nil
end

-- `export NAME='value'` lines for eval: the client variables, then the sandbox's own.
local function exports(dir, root)
  local env = load_table(dir .. "/env.lua")
  local cred = load_table(root .. "/lua/sandbox/credentials.lua")
  if not (env and cred) then return nil end
  local lines = {}
  for _, var in ipairs(CLIENT_VARS) do
    lines[#lines + 1] = ("export %s=%s\n"):format(var[1], shell_quote(var[2](env, cred)))
  end
  local f = io.open(dir .. "/env.sh", "rb")
  if not f then return nil end
  lines[#lines + 1] = f:read "*a"
  f:close()
  return table.concat(lines)
end

local ACTIONS = { start = true, stop = true, status = true }

--- run(parsed, env) -> exit code: 0, or 1 when the sandbox failed to start
-- (sandbox/run said why on stderr), 3 when status finds it not running.
function M.run(parsed, env)
  local action = parsed.words[2]
  if not ACTIONS[action] or parsed.words[3] then
    args.usage_error "try: planapi sandbox start|stop|status [--dir DIR]"
  end
  local root = M.root()
  if not root then
    env.stderr:write "planapi: the sandbox's files are not installed beside planapi.cli (planapi/sandbox/)\n"
    return 1
  end
  local dir = private_run_dir(parsed, env.getenv)
  local command = ("PLANAPI_SANDBOX_DIR=%s bash %s %s >/dev/null"):format(shell_quote(dir),
    shell_quote(root .. "/run"), action)
  local ok = succeeded(command)
  if action == "stop" then return ok and 0 or 1 end
  local text = ok and exports(dir, root)
  if not text then return action == "status" and 3 or 1 end
  env.stdout:write(text)
  env.stdout:flush()
  return 0
end

return M
