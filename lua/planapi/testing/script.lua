-- testing/script.lua: run a command-line script that builds its own
-- clients (from the environment, as the examples do) inside the test's
-- process, against fakes: testing.run(path, { args =, env =, transport = }).
--
--   local run = testing.run("examples/planfix_rest_tasks.lua",
--     { env = { PLANFIX_ACCOUNT = "acme", PLANFIX_TOKEN = "t" }, transport = fake })
--   assert.equal(0, run.code); assert.matches("7 tasks in all", run.stdout)
--
-- The script sees only the environment given (os.getenv), its arguments as
-- arg, and an os.exit that ends the run with its code instead of the
-- process. What it prints is kept (stdout, stderr). Its `require "planapi"`
-- gives the library with each client constructor adding the fake as its
-- transport (one fake for all, or one per API: { planfix_rest =, planfix_xml =,
-- planado = }); core.catch_interrupt does nothing, so the test process keeps
-- its own Ctrl-C. Nothing here requires the library's facade: the script's
-- own require of it is wrapped.
local config_error = require "planapi.config_error"

local M = {}

local CONSTRUCTORS = { "planfix_rest", "planfix_xml", "planado" }
local EXIT = {} -- the sentinel os.exit raises

-- A stand-in for io.stdout / io.stderr that keeps what is written.
local function sink(parts)
  local file = {}
  function file.write(self, ...)
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
    return self
  end
  function file.flush() return true end
  function file.setvbuf() return true end
  return file
end

local function transport_for(transport, api)
  if type(transport) == "table" and getmetatable(transport) == nil then return transport[api] end
  return transport
end

-- The library as the script gets it: its constructors pass the fake.
local function wrapped_planapi(real, transport)
  local proxy = setmetatable({}, { __index = real })
  for _, api in ipairs(CONSTRUCTORS) do
    local fake = transport_for(transport, api)
    proxy[api] = setmetatable({}, {
      __index = real[api],
      __call = function(_, opts)
        local o = {}
        for k, v in pairs(opts or {}) do o[k] = v end
        if o.transport == nil then o.transport = fake end
        return real[api](o)
      end,
    })
  end
  proxy.core = setmetatable({ catch_interrupt = function() end }, { __index = real.core })
  return proxy
end

-- The globals the script runs with: its own os, io, print, arg, require.
local function environment(path, opts, out, err)
  local env = setmetatable({}, { __index = _G })
  local vars = opts.env or {}
  env.os = setmetatable({
    getenv = function(name) return vars[name] end,
    exit = function(code)
      if code == true or code == nil then code = 0 elseif code == false then code = 1 end
      error({ [EXIT] = code }, 0)
    end,
  }, { __index = os })
  local stdout, stderr = sink(out), sink(err)
  env.io = setmetatable({ stdout = stdout, stderr = stderr, write = function(...) return stdout:write(...) end },
    { __index = io })
  env.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    stdout:write(table.concat(parts, "\t"), "\n")
  end
  env.arg = { [0] = path }
  for i, a in ipairs(opts.args or {}) do env.arg[i] = a end
  env.require = function(name)
    local mod = require(name)
    if name == "planapi" then return wrapped_planapi(mod, opts.transport) end
    return mod
  end
  return env
end

--- testing.run(path, { args = {...}, env = { NAME = value }, transport = fake | { api = fake } })
-- -> { code = the exit code (0 when it ends by itself), stdout =, stderr =, error = message | nil }
-- A script that raises ends with code 1 and its error in error.
function M.run(path, opts)
  opts = opts or {}
  if type(path) ~= "string" then config_error("testing.run needs the script's path", 2) end
  if type(opts) ~= "table" then config_error("testing.run's options must be a table", 2) end
  local out, err = {}, {}
  local env = environment(path, opts, out, err)
  local chunk, lerr = loadfile(path, "t", env)
  if not chunk then config_error("testing.run cannot load " .. path .. ": " .. tostring(lerr), 2) end
  local ok, raised = pcall(chunk, (table.unpack or unpack)(env.arg))
  local result = { code = 0, stdout = table.concat(out), stderr = table.concat(err) }
  if not ok then
    if type(raised) == "table" and raised[EXIT] ~= nil then
      result.code = raised[EXIT]
    else
      result.code, result.error = 1, tostring(raised)
    end
  end
  return result
end

return M
