-- cli/profiles.lua: credentials, from the environment or a profile file,
-- never from the command line (argv shows in `ps` and shell history).
--   PLANFIX_REST_URL or PLANFIX_ACCOUNT, PLANFIX_TOKEN              Planfix REST
--   PLANFIX_ACCOUNT, PLANFIX_API_KEY, PLANFIX_XML_TOKEN (or
--     PLANFIX_LOGIN + PLANFIX_PASSWORD), PLANFIX_XML_URL,
--     PLANFIX_PRIVATE_KEY                                           Planfix XML
--   PLANADO_API_KEY, PLANADO_URL                                    Planado
--   PLANAPI_CA_FILE, PLANAPI_LIMITER                                 all of them
--   PLANFIX_EVENTS_SECRET, PLANFIX_EVENTS_SECRET_IN                  planapi receive planfix
--   PLANADO_WEBHOOK_SECRET                                          planapi receive planado
-- A profile file (PLANAPI_PROFILES, or ~/.config/planapi/profiles.json)
-- holds named sets: { "work": { "planfix_rest": { "account": "acme", "token": "..." },
--                               "planfix_xml": {...}, "planado": {...},
--                               "planfix_events": { "secret": "...", "secret_in": "query:token" },
--                               "planado_webhook": { "secret": "..." } } }.
local core = require "planapi.core"

local M = {}

local ENV = {
  planfix_rest = { base_url = "PLANFIX_REST_URL", account = "PLANFIX_ACCOUNT", token = "PLANFIX_TOKEN" },
  planfix_xml = { account = "PLANFIX_ACCOUNT", api_key = "PLANFIX_API_KEY", token = "PLANFIX_XML_TOKEN",
    login = "PLANFIX_LOGIN", password = "PLANFIX_PASSWORD", url = "PLANFIX_XML_URL",
    private_key = "PLANFIX_PRIVATE_KEY" },
  planado = { api_key = "PLANADO_API_KEY", url = "PLANADO_URL" },
  planfix_events = { secret = "PLANFIX_EVENTS_SECRET", secret_in = "PLANFIX_EVENTS_SECRET_IN" },
  planado_webhook = { secret = "PLANADO_WEBHOOK_SECRET" },
}
-- What makes an API "configured".
local REQUIRED = { planfix_rest = "token", planfix_xml = "api_key", planado = "api_key",
  planfix_events = "secret", planado_webhook = "secret" }
-- The sections of clients (the receivers make no requests: no CA, no limiter).
local CLIENTS = { planfix_rest = true, planfix_xml = true, planado = true }

local function profile_file(getenv)
  return getenv "PLANAPI_PROFILES" or ((getenv "HOME" or ".") .. "/.config/planapi/profiles.json")
end

--- The options of one API's client, or nil when it is not configured.
-- getenv: os.getenv (injectable for specs); profile: a name or nil.
function M.options(api, getenv, profile)
  local opts = {}
  if profile then
    local path = profile_file(getenv)
    local f = io.open(path, "rb")
    if not f then error({ usage = "no profile file at " .. path }, 0) end
    local doc = core.json_decode(f:read "a")
    f:close()
    if type(doc) ~= "table" then error({ usage = path .. " is not a JSON object" }, 0) end
    local p = doc[profile]
    if type(p) ~= "table" then error({ usage = "no profile '" .. profile .. "' in " .. path }, 0) end
    local section = p[api]
    if section ~= nil and type(section) ~= "table" then
      error({ usage = ("profile '%s' in %s: %s must be an object of options"):format(profile, path, api) }, 0)
    end
    for k, v in pairs(section or {}) do opts[k] = v end
  else
    for opt, name in pairs(ENV[api]) do opts[opt] = getenv(name) end
  end
  if opts.base_url then opts.account = nil end
  if api == "planfix_xml" and opts.token then opts.login, opts.password = nil, nil end
  if CLIENTS[api] then
    opts.ca_file = opts.ca_file or getenv "PLANAPI_CA_FILE"
    opts.limiter = opts.limiter or getenv "PLANAPI_LIMITER"
  end
  if opts[REQUIRED[api]] == nil then return nil end
  return opts
end

M.ENV = ENV
return M
