-- planfix_xml/init.lua: the Planfix XML API client (Planfix's XML API documentation).
--
-- Every documented method (planfix_xml/methods.lua) by name; requests are
-- encoded and signed in C (xml_encode.c, sign.c), responses decoded in C
-- (xml_decode.c) with list containers always arrays. Token auth (Basic
-- api_key:token) or the legacy login mode (auth.login gives a sid that goes
-- in every body; renewed once on 0005, never in a loop). Errors carry the
-- documented meaning of their code (planfix_xml/errors.lua).
local core = require("planapi.core")
local base = require("planapi.client_base")
local scaffold = require("planapi.scaffold")
local tables = require("planapi.planfix_xml.methods")
local codes = require("planapi.planfix_xml.errors")

local METHODS = tables.methods
local config_error = base.config_error

local Xml = {}

local SPEC = {
  api = "planfix_xml", pager_name = "xml:pager",
  options = { account = "string", api_key = "string", token = "string", login = "string", password = "string",
    url = "string", private_key = "string", silent = "boolean", page_size = "number", definitions = "table" },
  call_options = { silent = "boolean", unchecked = "boolean", timeout = "number", sink = "string",
    dry_run = "boolean|string" },
  -- beside the pager's own (pager.lua)
  pager_options = { page_size = "number", silent = "boolean", timeout = "number", unchecked = "boolean" },
  max_page_size = 100,
  fields = { "account", "mode", "silent", "page_size", "login_name", "credentials", "private_key", "url", "sid",
    "logins" },
  -- xml.task, xml.handbook...: loaded on first use
  resources = function() return require "planapi.planfix_xml.resources" end,
  describe = function(self) return ("planapi.planfix_xml (%s, %s mode)"):format(self.url, self.mode) end,
}
scaffold.class(Xml, SPEC)

local lookup_documented
--- Xml.methods(): the documented method names, sorted; Xml.method(name):
-- the description of one (root, list, paged, counts, writes...).
Xml.methods, Xml.method, lookup_documented = scaffold.catalogue(METHODS, "Planfix XML method",
  "%d methods are documented, listed by planfix_xml.methods()")

--- The data centres (the XML API documentation's list of endpoints); error 0024 points at this list.
Xml.DATA_CENTRES = {
  europe = "https://api.planfix.com/xml/",
  asia = "https://api-sg.planfix.com/xml/",
  usa = "https://api-us.planfix.com/xml/",
  russia = "https://apiru.planfix.ru/xml/",
  legacy = "https://api.planfix.ru/xml/",
}
local DEFAULT_URL = Xml.DATA_CENTRES.europe
-- 1 request per second (the XML API documentation's limits), with the same slack as REST.
local DEFAULT_RATE = { rate = 1, per = 1, burst = 1, margin = 0.02 }

-- Codes whose class is "config" but that are about credentials: kind auth.
local CREDENTIAL_CODES = { ["0001"] = true, ["0012"] = true, ["0013"] = true, ["0014"] = true,
  ["0020"] = true, ["1001"] = true, ["1002"] = true }

--- planapi.planfix_xml{ account, api_key, token | login + password, ... }
function Xml.new(opts)
  scaffold.check_options(SPEC, opts)
  for _, k in ipairs { "account", "api_key" } do
    if opts[k] == nil or opts[k] == "" then config_error(("planfix_xml option '%s' is required"):format(k), 2) end
  end
  -- They reach the Authorization header (base64 would hide a line break, but
  -- a credential with one is a paste error to report, not to send).
  for _, k in ipairs { "account", "api_key", "token", "private_key" } do
    if type(opts[k]) == "string" and opts[k]:find "[%c]" then
      config_error(("planfix_xml option '%s' must not contain control characters (CR, LF, NUL...)"):format(k), 2)
    end
  end
  local mode
  if opts.token ~= nil then
    if opts.login ~= nil or opts.password ~= nil then
      config_error("planfix_xml takes a token or a login and password, not both", 2)
    end
    mode = "token"
  elseif opts.login ~= nil and opts.password ~= nil then
    mode = "login"
  else
    config_error("planfix_xml needs a token (preferred) or a login and password", 2)
  end
  local page_size = scaffold.page_size(SPEC, opts.page_size, "planfix_xml option 'page_size'", SPEC.max_page_size)
  -- Secrets live in closures and the C client, never in fields a dump would show.
  local password, private_key = opts.password, opts.private_key
  local basic = core.base64(opts.api_key .. ":" .. (mode == "token" and opts.token or ""))
  -- custom data by field name (planfix_xml/custom_data.lua), loaded when a client asks for it
  local definitions = opts.definitions and require("planapi.planfix_xml.custom_data")
    .check_option(opts.definitions, 2, { opts.api_key, opts.token, opts.password, opts.private_key })
  local self, url = scaffold.instance(Xml, {
    account = opts.account, mode = mode, silent = opts.silent, page_size = page_size,
    login_name = opts.login, definitions_option = definitions,
    credentials = function() return opts.login, password end,
    private_key = function() return private_key end,
  }, opts, {
    base_url = opts.url or DEFAULT_URL,
    headers = { Authorization = "Basic " .. basic, Accept = "application/xml" },
    secrets = { opts.api_key, opts.token, opts.password, opts.private_key, basic },
    rate = DEFAULT_RATE,
    key = "planfix_xml:" .. opts.account,
  })
  self.url = url
  return self
end

local function lookup(name, unchecked)
  -- unknown and unchecked: treated as a write, never repeated
  if unchecked and METHODS[name] == nil then return { writes = true } end
  return lookup_documented(name, 2)
end

-- The list-container names the decoder needs for one method, cached.
local list_sets = {}
local function lists_for(name, info)
  local set = list_sets[name]
  if set then return set end
  set = {}
  for container in pairs(tables.nested_lists) do set[container] = true end
  if info.list and info.root then set[info.root] = true end
  list_sets[name] = set
  return set
end

--- xml:prepare(method, params, opts) -> req (pure: no I/O)
-- params: the method's parameters as nested tables (see README: arrays
-- repeat elements, "@name" keys are attributes). account, sid, silent and
-- the signature are added here.
-- opts: { silent = true|false, unchecked = true (a method missing from the
-- table), timeout =, sink = path (file.download into a file) }
function Xml:prepare(name, params, opts)
  if type(name) ~= "string" then config_error("an XML method name is required", 2) end
  opts = opts or {}
  scaffold.check_call_options(SPEC, opts, 2)
  local info = lookup(name, opts.unchecked)
  if params ~= nil and type(params) ~= "table" then config_error("params of " .. name .. " must be a table", 2) end
  local body = {}
  for k, v in pairs(params or {}) do
    if k == "account" or k == "sid" or k == "signature" then
      config_error(("'%s' is added by the client; do not pass it"):format(k), 2)
    end
    body[k] = v
  end
  body.account = self.account
  if self.mode == "login" and name ~= "auth.login" then body.sid = self.sid end
  local silent = opts.silent
  if silent == nil and info.silent then silent = self.silent end
  if silent then body.silent = 1 end
  local key = self.private_key()
  local xml = core.xml_encode(name, body, key)
  local req = self.core:prepare {
    method = "POST", path = "", body = xml, content_type = "application/xml; charset=utf-8",
    timeout = opts.timeout,
  }
  req.operation = name
  req.sink = opts.sink
  if opts.dry_run ~= nil then req.dry_run = opts.dry_run end
  -- the write guard reads where a task write lands (guard.lua), a
  -- recording transport what was asked for
  if self.guard or self.keep_params then req.params = params end
  -- auth.login's answer is the session id, a secret the client learns only
  -- after the call: the call events never show that body.
  if name == "auth.login" then req.secret_answer = true end
  return req
end

-- The error for a <response status="error">, classified by its code.
local function response_error(self, name, status, code, server_message)
  local info = codes[code]
  local class = info and info.class or "caller"
  local meaning = info and info.meaning
  local kind, retryable, rejected = "api", false, nil
  if class == "reauth" then
    kind = "auth"
  elseif class == "quota" then
    kind = "quota"
  elseif class == "retry" then
    retryable = true
    rejected = code ~= "9007" -- 0011, 3014: refused before anything was done
  elseif class == "config" then
    kind = CREDENTIAL_CODES[code] and "auth" or "config"
  end
  if code == "0012" and self.mode == "token" then
    kind, meaning = "auth", "the token does not exist"
  end
  if server_message == "" then server_message = nil end
  -- An undocumented code (0, say): the server's text alone, the code is in
  -- tostring(err) already; "error 0: ..." named nothing.
  local message = meaning or server_message or "the server gave no reason"
  if meaning and server_message and server_message ~= meaning then
    message = message .. ": " .. server_message
  end
  if code == "0024" then
    message = message .. "; set the url option to the account's data centre: "
      .. "https://api.planfix.com/xml/ (Europe), https://api-sg.planfix.com/xml/ (Asia), "
      .. "https://api-us.planfix.com/xml/ (USA), https://apiru.planfix.ru/xml/ (Russia)"
  end
  return self.core:error {
    kind = kind, message = message, status = status, code = code, operation = name,
    retryable = retryable, rejected = rejected,
  }
end

local function http_error(self, name, res, text)
  local status = res.status
  local kind, retryable, rejected, retry_after = "http", status >= 500, nil, base.retry_after(res.headers)
  if status == 429 then
    kind, retryable, rejected = "rate_limit", true, true
    retry_after = retry_after or 1
  end
  return self.core:error { kind = kind, status = status, operation = name, retryable = retryable,
    rejected = rejected, retry_after = retry_after, message = text or ("HTTP status " .. status) }
end

--- xml:parse(req, res) -> result | nil, err (pure: no I/O)
-- result: the children of <response> as tables (list containers always
-- arrays, with "@count" / "@totalCount"); file.download gives
-- { data = bytes } or { file = path, size = n } or { location = url }.
function Xml:parse(req, res)
  local name = req.operation
  local info = METHODS[name] or {}
  local status = res.status or 0
  local headers = res.headers or {}
  if info.raw then
    if status == 200 then
      if res.file then return { file = res.file, size = res.size } end
      return { data = res.body }
    elseif status >= 300 and status < 400 and headers.location then
      return { location = headers.location }
    end
  end
  if status >= 300 and status < 400 then return base.redirect_error(self, name, res) end
  if status == 429 then return nil, http_error(self, name, res) end
  local doc, err = core.xml_decode(res.body or "", lists_for(name, info))
  -- A proxy's or portal's page says what it is by its type: name it, even
  -- when the page is well-formed XHTML that decodes.
  local ctype = headers["content-type"]
  local what = (ctype and not ctype:lower():find("xml", 1, true)) and ("got " .. ctype .. ", ") or ""
  if doc == nil then
    if status >= 400 or status < 200 then
      return nil, http_error(self, name, res, err.message)
    end
    return nil, self.core:error { kind = "decode", status = status, operation = name,
      message = "the response is not the XML expected: " .. what .. err.message }
  end
  if doc["@status"] == "error" then
    local code = doc.code
    if type(code) ~= "string" or code == "" then code = nil end
    local text = type(doc.message) == "string" and doc.message or nil
    if code == nil and status >= 400 then return nil, http_error(self, name, res, text) end
    return nil, response_error(self, name, status, code, text)
  end
  if doc["@status"] ~= "ok" then
    if status >= 400 then return nil, http_error(self, name, res) end
    return nil, self.core:error { kind = "decode", status = status, operation = name,
      message = "the response is not the XML expected: " .. what .. "it has no status=\"ok\" or \"error\"" }
  end
  if status >= 400 then return nil, http_error(self, name, res) end
  return doc
end

-- One call through the limiter and the retry policy.
function Xml:_run(name, info, params, opts)
  local req = self:prepare(name, params, opts)
  req.idempotent = not info.writes
  return base.run(self, req)
end

-- ------------------------------------------------------------ guards
-- What guard.lua asks of a client (dry run and write guards).

--- Whether a prepared request changes data (methods.lua's writes; an
-- unknown method sent unchecked counts as a write).
function Xml.is_write(_, req)
  local info = METHODS[req.operation]
  return info == nil or info.writes == true
end

--- The resource of a method: the part of its name before the dot ("task").
function Xml.resource_of(_, req)
  return req.operation:match "^[^.]+"
end

local function id_of(v)
  return type(v) == "table" and (v.id or (v.general and { general = v.general })) or nil
end

--- Where a task write lands: { task = id | { general = n } | nil,
-- project = id | nil }, or nil for a write that is not on a task.
function Xml.task_write(_, req)
  local name, p = req.operation, req.params or {}
  local task = type(p.task) == "table" and p.task or {}
  local project = type(task.project) == "table" and task.project.id or nil
  if name == "task.add" then return { project = project } end
  if name:match "^task%." then return { task = id_of(task), project = project } end
  local action = type(p.action) == "table" and p.action or {}
  if name == "action.add" or name == "action.update" then return { task = id_of(action.task) } end
  return nil
end

--- The project a task is in now (one task.get): id | nil, err.
function Xml:task_project(task)
  local ref = type(task) == "table" and task or { id = task }
  local result, err = self:call("task.get", { task = ref })
  if not result then return nil, err end
  local t = result.task
  return type(t) == "table" and type(t.project) == "table" and t.project.id or nil
end

--- xml:login() -> sid | nil, err (login mode; done by itself when needed)
function Xml:login()
  if self.mode ~= "login" then config_error("login() is for the login/password mode", 2) end
  local login, password = self.credentials()
  local result, err = self:_run("auth.login", METHODS["auth.login"], { login = login, password = password })
  if not result then return nil, err end
  if result.dry_run then return nil end -- dry_run = "all": no session, nothing sent
  if type(result.sid) ~= "string" or result.sid == "" then
    return nil, self.core:error { kind = "auth", operation = "auth.login", message = "auth.login gave no sid" }
  end
  self.core:add_secret(result.sid)
  self.sid = result.sid
  self.logins = (self.logins or 0) + 1
  return self.sid
end

local function session_lost(self, err)
  return self.mode == "login" and (err.code == "0005" or err.code == "0012")
end

--- xml:call(method, params, opts) -> result, meta | nil, err
function Xml:call(name, params, opts)
  local info = lookup(name, opts and opts.unchecked)
  if self.mode == "login" and name ~= "auth.login" and not self.sid then
    local _, err = self:login()
    if err then return nil, err end
  end
  local result, meta = self:_run(name, info, params, opts)
  if result == nil and name ~= "auth.login" and session_lost(self, meta) then
    -- The session expired: log in once, send once more. A second failure is
    -- returned as it is: never a loop.
    self.sid = nil
    local _, err = self:login()
    if err then return nil, err end
    result, meta = self:_run(name, info, params, opts)
    if result == nil and session_lost(self, meta) then meta.kind = "auth" end
  end
  return result, meta
end

--- xml:pager(method, params, opts) -> pager (see pager.lua); xml:pages,
-- xml:each and xml:all (scaffold.lua) take the same arguments.
-- Pages by pageCurrent (from 1) and pageSize (<= 100); stops at
-- totalCount, on a short page, or on count = 0. Each page is the list table
-- with `count` and `totalCount` (numbers, when the API gives them).
function Xml:pager(name, params, opts)
  local info = lookup(name)
  opts = opts or {}
  if not info.paged then config_error(("%s is not a paged list; use xml:call"):format(name), 2) end
  opts = scaffold.pager_options(SPEC, opts)
  local page_size = scaffold.page_size(SPEC, opts.page_size or (params and tonumber(params.pageSize)), "page_size",
    self.page_size)
  local fixed = scaffold.copy(params, { "pageCurrent", "pageSize" })
  local first = params and tonumber(params.pageCurrent) or 1
  local call_opts = { silent = opts.silent, timeout = opts.timeout }
  return scaffold.walk(opts, function(cursor)
    local page = cursor and cursor.page or first
    local p = scaffold.copy(fixed)
    p.pageCurrent, p.pageSize = page, page_size
    local result, err = self:call(name, p, call_opts)
    if not result then return nil, err end
    local list = result[info.root]
    if type(list) ~= "table" then list = {} end
    local count = tonumber(list["@count"]) or #list
    local total = tonumber(list["@totalCount"])
    list.count, list.totalCount = count, total
    local done = count == 0 or #list < page_size or (total and (page - 1) * page_size + count >= total)
    return list, (not done) and { page = page + 1 } or nil
  end)
end

--- xml:download(file_id, opts) -> bytes | { file, size } | { location } ...
-- opts.path: write the file there (streamed, renamed into place when complete);
-- opts.follow: fetch a 302 link too (without the credentials).
function Xml:download(file_id, opts)
  opts = opts or {}
  local result, err = self:call("file.download", { file = { id = file_id } },
    { sink = opts.path, timeout = opts.timeout })
  if not result then return nil, err end
  if result.location and opts.follow then
    local res, ferr = scaffold.follow(self, "file.download", result.location, opts.path,
      "following the download link failed")
    if not res then return nil, ferr end
    if res.file then return { file = res.file, size = res.size } end
    return res.body
  end
  if result.data then return result.data end
  return result
end

return Xml
