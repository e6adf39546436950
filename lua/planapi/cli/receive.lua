-- cli/receive.lua: `planapi receive planfix|planado`, an events receiver
-- without writing HTTP: a small server (planapi.events.server) that claims
-- each event, answers at once, and then runs a handler script's function.
--
--   planapi receive planfix --listen 127.0.0.1:8090 --handler on_event.lua --store file:/var/lib/hooks
--
-- on_event.lua returns function(event) -> truthy | nil, err (or a table with
-- handle = that function). A success is final; an error with
-- permanent = true is recorded and not retried; any other error or a raised
-- one is handled again later (the receiver's lease), never by making the
-- sender retry. The secret comes from the environment (PLANFIX_EVENTS_SECRET,
-- PLANADO_WEBHOOK_SECRET) or a profile, never from the command line.
local planapi = require "planapi"
local core = require "planapi.core"
local args = require "planapi.cli.args"
local profiles = require "planapi.cli.profiles"

local M = {}

-- The profile section and constructor of each sender's receiver.
local KINDS = {
  planfix = { section = "planfix_events", make = function(opts) return planapi.planfix_events(opts) end },
  planado = { section = "planado_webhook", make = function(opts) return planapi.planado_webhook(opts) end },
}

--- The store an option names: nil (memory, the receiver's default),
-- file:DIR or redis://...
function M.store(spec)
  if spec == nil or spec == "memory" then return nil end
  local dir = spec:match "^file:(.+)$"
  if dir then return planapi.events.file { dir = dir } end
  if spec:match "^redis://" then return planapi.events.redis { url = spec } end
  -- Only the scheme said back: the text may hold a password (PLANAPI_EVENTS_STORE).
  args.usage_error(("--store takes memory, file:DIR or redis://HOST:PORT (got %s...)"):format(spec:match "^[^:]*"))
end

-- --store, else PLANAPI_EVENTS_STORE. A Redis password is refused on the
-- command line (ps shows it): it goes in the environment variable.
local function store_spec(parsed, env)
  local spec = parsed.options["--store"]
  if spec and spec:match "^redis://[^/]*@" then
    args.usage_error "--store: a Redis password does not go on the command line (ps shows it): set PLANAPI_EVENTS_STORE"
  end
  return spec or env.getenv "PLANAPI_EVENTS_STORE"
end

-- The handler function of a script: what it returns, or its `handle`.
local function load_handler(path)
  if not path then args.usage_error "receive needs --handler script.lua (returning function(event))" end
  local chunk, err = loadfile(path)
  if not chunk then args.usage_error(("cannot load the handler %s: %s"):format(path, tostring(err))) end
  local got = chunk()
  if type(got) == "table" and type(got.handle) == "function" then
    local module = got
    return function(event) return module.handle(event) end
  end
  if type(got) ~= "function" then
    args.usage_error(("the handler %s must return a function(event) (or a table with handle)"):format(path))
  end
  return got
end

-- The receiver of one sender, from the environment or a profile.
local function receiver(kind, parsed, env)
  local k = KINDS[kind]
  if not k then args.usage_error("receive takes planfix or planado (got " .. tostring(kind) .. ")") end
  local opts = profiles.options(k.section, env.getenv, parsed.options["--profile"])
  if not opts then
    args.usage_error(("the %s receiver needs its secret: set %s, or use --profile"):format(kind,
      profiles.ENV[k.section].secret))
  end
  -- The place README's recommended scenario template puts it.
  opts.secret_in = parsed.options["--secret-in"] or opts.secret_in or (kind == "planfix" and "field:secret" or nil)
  opts.store = M.store(store_spec(parsed, env))
  return k.make(opts)
end

--- run(parsed, env) -> exit code (0 after --max-requests, 130 on Ctrl-C).
function M.run(parsed, env)
  local kind = parsed.words[2]
  local r = receiver(kind, parsed, env)
  local handler = load_handler(parsed.options["--handler"])
  local max_requests = parsed.options["--max-requests"]
  if max_requests and not tonumber(max_requests) then args.usage_error "--max-requests takes a number" end
  local server = require("planapi.events.server").new {
    receiver = r, handler = handler, listen = parsed.options["--listen"] or "127.0.0.1:8090",
    log = function(line) env.stderr:write("planapi receive: ", line, "\n") env.stderr:flush() end,
  }
  local host, port = server:address()
  env.stdout:write(("listening on http://%s:%d/ (%s events)\n"):format(host, port, kind))
  env.stdout:flush()
  server:run { max_requests = tonumber(max_requests), stop = core.interrupted }
  server:close()
  if core.interrupted() then
    env.stderr:write("planapi receive: stopped (Ctrl-C); with a file or Redis store, events claimed and not yet ",
      "handled are taken again at the next start\n")
    return 130
  end
  return 0
end

return M
