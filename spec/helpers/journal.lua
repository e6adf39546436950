-- journal.lua: loaded by busted before any spec (.busted `helper`), in every
-- run. It writes down, for tools/scan-secrets (a step of make test):
--   build/journal/secrets-<run>.txt  every secret the suite configures: the
--     token, key, password, private key or webhook secret options of every
--     client and receiver made, every Authorization value and every secret
--     registered with a C client (XML session ids included), and those a
--     spec hands to a child process (journal.secret)
--   build/journal/<name>-<run>.log   logs a spec makes (M.log_path): the
--     call events' JSON Lines (spec/84, spec/85)
--   build/journal/output-<run>.log   every error the library makes or
--     returns (its tostring and every string field), every error rendered by
--     tostring, and the output of every child process a spec runs (CLI,
--     examples, workers)
-- Together with busted's own output (failure messages and tracebacks, in
-- build/*.tap) and every step log, that is all the suite produces; the scan
-- finds no secret in any of it or fails the run.
local core = require "planapi.core"

local M = {}

local dir = os.getenv "PLANAPI_JOURNAL_DIR" or "build/journal"
os.execute("mkdir -p '" .. dir .. "'")
-- One pair of files per busted process (Lua 5.4 and LuaJIT runs, valgrind).
local run = ("%d-%d"):format(os.time(), math.random(1, 1e9))
local secrets_file = assert(io.open(("%s/secrets-%s.txt"):format(dir, run), "a"))
local output_file = assert(io.open(("%s/output-%s.log"):format(dir, run), "a"))

local seen = {}
--- Note a secret the suite configured (a spec calls this for secrets it
-- gives a child process). Lines: the secret as is, one per line.
function M.secret(s)
  if type(s) ~= "string" or s == "" or seen[s] or s:find "[\r\n]" then return end
  seen[s] = true
  secrets_file:write(s, "\n")
  secrets_file:flush()
end

--- A path for a log file a spec makes (call events' JSON Lines...):
-- build/journal/<name>-<run>.log, where the secret scan reads it.
-- Absolute, for a child that runs elsewhere (an nginx with its own prefix).
function M.log_path(name)
  local path = ("%s/%s-%s.log"):format(dir, name, run)
  if path:sub(1, 1) ~= "/" then path = assert(os.getenv "PWD") .. "/" .. path end
  return path
end

--- A path for a cassette a spec records (planapi.testing.cassette):
-- build/journal/<name>-<run>.cassette.json, where the secret scan reads it.
function M.cassette_path(name)
  return ("%s/%s-%s.cassette.json"):format(dir, name, run)
end

--- Note text the suite produced (errors, child output).
function M.output(s)
  if s == nil then return end
  output_file:write(tostring(s), "\n")
  output_file:flush()
end

-- An error's line and every string it holds (message, body, code, fields a
-- client adds, nested tables): a server's text can reach any of them.
local function note_error(e)
  if not core.is_error(e) then return end
  M.output(tostring(e))
  local walked = {}
  local function walk(t, depth)
    if walked[t] or depth > 3 then return end
    walked[t] = true
    for _, v in pairs(t) do
      if type(v) == "string" then
        M.output(v)
      elseif type(v) == "table" then
        walk(v, depth + 1)
      end
    end
  end
  walk(e, 1)
end

-- Secrets from constructor options.
local SECRET_OPTIONS = { "token", "api_key", "password", "private_key", "secret" }
local function note_options(opts)
  if type(opts) ~= "table" then return end
  for _, k in ipairs(SECRET_OPTIONS) do
    if type(opts[k]) == "string" and #opts[k] >= 6 then M.secret(opts[k]) end
  end
  if type(opts.headers) == "table" then
    for name, v in pairs(opts.headers) do
      if type(name) == "string" and name:lower() == "authorization" and type(v) == "string" then
        M.secret(v)
        M.secret(v:match "^%S+%s+(.+)$") -- the credential without its scheme
      end
    end
  end
  if type(opts.secrets) == "table" then
    for _, s in ipairs(opts.secrets) do M.secret(s) end
  end
end

local function wrap_constructor(module_name)
  local ok, mod = pcall(require, module_name)
  if not ok or type(mod) ~= "table" or type(mod.new) ~= "function" then return end
  local new = mod.new
  mod.new = function(opts, ...)
    note_options(opts)
    return new(opts, ...)
  end
end
for _, name in ipairs { "planapi.planfix_rest", "planapi.planfix_xml", "planapi.planado",
  "planapi.planado.webhook" } do
  wrap_constructor(name)
end

-- The C client: its options, and every secret added later (session ids).
local client_new = core.client
core.client = function(opts, ...)
  note_options(opts)
  return client_new(opts, ...)
end
do
  local probe = client_new { base_url = "https://127.0.0.1/" }
  local methods = getmetatable(probe).__index
  probe:close()
  if type(methods) == "table" then
    local add_secret, make_error = methods.add_secret, methods.error
    if add_secret then
      methods.add_secret = function(self, s, ...)
        M.secret(s)
        return add_secret(self, s, ...)
      end
    end
    if make_error then
      methods.error = function(...)
        local e = make_error(...)
        note_error(e)
        return e
      end
    end
  end
end

-- Errors: made in Lua, returned by a call, rendered anywhere.
local error_new = core.error
core.error = function(...)
  local e = error_new(...)
  note_error(e)
  return e
end
local base = require "planapi.client_base"
local run_call = base.run
base.run = function(...)
  local r, e = run_call(...)
  if r == nil then note_error(e) end
  return r, e
end
do
  local mt = getmetatable(error_new { kind = "config", message = "journal probe" })
  local render = mt.__tostring
  mt.__tostring = function(e)
    local s = render(e)
    M.output(s)
    return s
  end
end

-- Child processes' output.
local portable = require "portable"
local run_cmd, popen = portable.run, portable.popen
portable.run = function(...)
  local out, code = run_cmd(...)
  M.output(out)
  return out, code
end
portable.popen = function(...)
  local f, err = popen(...)
  if not f then return f, err end
  local read = f.read
  f.read = function(self, ...)
    local r = read(self, ...)
    if type(r) == "string" then M.output(r) end
    return r
  end
  return f
end

package.loaded.journal = M
return M
