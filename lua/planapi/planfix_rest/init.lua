-- planfix_rest/init.lua: the Planfix REST API client.
--
-- Spec-driven: every one of the operations in planfix_rest/ops.lua (made by
-- tools/gen_rest_ops.lua from the official OpenAPI file) can be called by
-- its operationId; each parameter goes to the path, the query or the JSON
-- body as the spec says. Paged lists get iterators; errors get the
-- documented meaning of their code (planfix_rest/errors.lua).
local core = require("planapi.core")
local base = require("planapi.client_base")
local scaffold = require("planapi.scaffold")
local multipart = require("planapi.planfix_rest.multipart")
local codes = require("planapi.planfix_rest.errors")
local params_check = require("planapi.planfix_rest.params")

local OPS = require("planapi.planfix_rest.ops").ops
local config_error = base.config_error

local Rest = {}

-- 1 request per second (Planfix's REST API documentation, limits), with 20 ms of slack for the
-- server's own timing (see src/limiter.c); configurable with `rate`.
local DEFAULT_RATE = { rate = 1, per = 1, burst = 1, margin = 0.02 }
local CALL_OPTIONS = { query = "table", body = "table|string", headers = "table", timeout = "number",
  unchecked = "boolean", dry_run = "boolean|string", partial = "string" }

local SPEC = {
  api = "planfix_rest", pager_name = "rest:pager",
  options = { account = "string", base_url = "string", token = "string", page_size = "number",
    unchecked = "boolean", partial = "string", definitions = "table" },
  call_options = CALL_OPTIONS,
  -- beside the pager's own (pager.lua): the call options too
  pager_options = scaffold.copy(CALL_OPTIONS),
  max_page_size = 100,
  fields = { "base_url", "page_size", "unchecked", "partial" },
  -- rest.tasks, rest.files...: loaded on first use
  resources = function() return require "planapi.planfix_rest.resources" end,
  describe = function(self) return ("planapi.planfix_rest (%s)"):format(self.base_url) end,
}
SPEC.pager_options.page_size = "number"
scaffold.class(Rest, SPEC)

local lookup
--- Rest.operations(): the sorted operationIds this client knows;
-- Rest.operation(op_id): the description of one (method, path, parameters...).
Rest.operations, Rest.operation, lookup = scaffold.catalogue(OPS, "Planfix REST operation",
  "%d operations are known, listed by planfix_rest.operations()")

-- partial = "error": an update the server applied in part (`failures`)
-- is an api error; "result" (the default) returns it with its failures.
local function check_partial(v, level)
  if v == nil or v == "result" then return nil end
  if v ~= "error" then
    config_error(("option 'partial' must be \"result\" (the default) or \"error\" (got %q)"):format(v), level + 1)
  end
  return v
end

--- planapi.planfix_rest{ account = "acme" | base_url = "https://...", token = "...", ... }
function Rest.new(opts)
  scaffold.check_options(SPEC, opts)
  local token = opts.token
  if token == nil or token == "" then config_error("planfix_rest option 'token' is required", 2) end
  local base_url = opts.base_url
  if base_url == nil then
    local account = opts.account
    if account == nil then config_error("planfix_rest needs 'account' or 'base_url'", 2) end
    if not account:match "^[%w][%w%-]*$" then
      config_error("planfix_rest option 'account' must be the account's name, such as 'acme'", 2)
    end
    base_url = ("https://%s.planfix.com/rest/"):format(account)
  end
  local page_size = scaffold.page_size(SPEC, opts.page_size, "planfix_rest option 'page_size'", SPEC.max_page_size)
  -- custom fields by name (planfix_rest/custom_fields.lua), loaded when a client asks for them
  local definitions = opts.definitions and require("planapi.planfix_rest.custom_fields")
    .check_option(opts.definitions, 2, token)
  local self, url = scaffold.instance(Rest, { page_size = page_size, unchecked = opts.unchecked == true,
    partial = check_partial(opts.partial, 2) or false, definitions_option = definitions }, opts, {
    base_url = base_url,
    headers = { Authorization = "Bearer " .. token },
    secrets = { token },
    rate = DEFAULT_RATE,
    -- one budget per account: its API host names it
    key = "planfix_rest:" .. (base_url:match "^%a+://([^/]+)" or base_url),
  })
  self.base_url = url
  return self
end

local function valid_params(op)
  local names = {}
  for _, p in ipairs(op.path_params) do names[#names + 1] = p end
  for p in pairs(op.query) do names[#names + 1] = p end
  for p in pairs(op.body_params or {}) do names[#names + 1] = p end
  table.sort(names)
  return table.concat(names, ", ")
end

-- A path segment: percent-encoded, but ':' kept, so "contact:12" stays
-- readable (RFC 3986 allows ':' in a path segment).
local function path_segment(v)
  return (core.url_escape(v):gsub("%%3A", ":"))
end

-- Raise on a value the spec refuses, unless the call is `unchecked`.
local function check(ctx, name, v, t, in_url)
  if not ctx.unchecked then params_check.check(ctx.op_id, ctx.op, name, v, t, in_url) end
end

local function fill_path(ctx, params)
  local op, op_id = ctx.op, ctx.op_id
  return (op.path:gsub("{([%w_]+)}", function(name)
    local v = params[name]
    if v == nil or v == core.null or v == "" then
      config_error(("%s needs the path parameter '%s'"):format(op_id, name), 5)
    end
    if type(v) ~= "string" and type(v) ~= "number" then
      config_error(("path parameter '%s' of %s must be a string or a number"):format(name, op_id), 5)
    end
    check(ctx, name, v, op.path_types[name], true)
    return path_segment(v)
  end))
end

-- Route each parameter to the query, the JSON body or the multipart parts,
-- under its name on the wire (op.wire: `query_id` is the query's `id`).
-- An empty plain table fits an array and an object alike; where the spec
-- says array it goes out as [] (JSON's {} there is what the spec refuses).
local function spec_shaped(v, spec_type)
  if spec_type == "array" and type(v) == "table" and next(v) == nil and getmetatable(v) == nil then
    return core.array()
  end
  return v
end

local function route(ctx, params)
  local op, op_id = ctx.op, ctx.op_id
  local wire = op.wire or {}
  local query, body, parts = {}, nil, nil
  for k, v in pairs(params) do
    local on_wire = wire[k] or k
    if op.path_types[k] then
      -- filled in by fill_path
    elseif op.query[k] then
      check(ctx, k, v, op.query[k], true)
      query[on_wire] = v
    elseif op.body == "multipart" and op.body_params and op.body_params[k] then
      parts = parts or {}
      parts[#parts + 1] = type(v) == "table" and multipart.file_part(on_wire, v) or multipart.field_part(on_wire, v)
    elseif op.body_params and op.body_params[k] then
      check(ctx, k, v, op.body_params[k], false)
      body = body or {}
      body[on_wire] = ctx.unchecked and v or spec_shaped(v, op.body_params[k])
    else
      config_error(("unknown parameter '%s' for %s (valid: %s)"):format(tostring(k), op_id, valid_params(op)), 4)
    end
  end
  return query, body, parts
end

-- A required parameter may also come in opts.query or a whole opts.body,
-- under its name on the wire.
local function check_required(ctx, params, opts)
  local op = ctx.op
  local wire = op.wire or {}
  for _, name in ipairs(op.required) do
    local on_wire = wire[name] or name
    local in_opts = (op.query[name] and opts.query and opts.query[on_wire] ~= nil) or
      (type(opts.body) == "table" and opts.body[on_wire] ~= nil)
    if params[name] == nil and not in_opts then
      config_error(("%s needs the parameter '%s'"):format(ctx.op_id, name), 4)
    end
  end
end

--- rest:prepare(op_id, params, opts) -> req (pure: no I/O)
-- params: the operation's parameters by name, routed as the spec says and
--   checked against it (type, enum, minimum, maximum, length, "at least
--   one of"); a wrong one raises a config error before anything is sent.
--   Where the path and the query (or the body) both have a name, the other
--   one is called `query_<name>` (`body_<name>`): attach-file-to-task takes
--   `id` (the file, in the path) and `query_id` (the task).
-- opts: { query = extra query parameters, body = a whole body to send
--   instead (table or string), headers =, timeout =, unchecked = true (send
--   the parameters as given, without the spec's checks; the client option
--   `unchecked` sets it for every call) }
function Rest:prepare(op_id, params, opts)
  local op = lookup(op_id)
  params, opts = params or {}, opts or {}
  if type(params) ~= "table" then config_error("params of " .. op_id .. " must be a table", 2) end
  if type(opts) ~= "table" then config_error("options of " .. op_id .. " must be a table", 2) end
  scaffold.check_call_options(SPEC, opts, 2)
  local ctx = { op = op, op_id = op_id, unchecked = opts.unchecked or self.unchecked }

  local path = fill_path(ctx, params)
  local query, body, parts = route(ctx, params)
  local content_type
  if parts then
    table.sort(parts, function(a, b) return a.field < b.field end)
    body, content_type = multipart.encode(parts)
  end
  if opts.body ~= nil then body = opts.body end
  check_required(ctx, params, opts)
  if not ctx.unchecked and type(body) ~= "string" then params_check.check_at_least_one(op_id, op, body) end
  if opts.query then
    for k, v in pairs(opts.query) do query[k] = v end
  end
  if body == nil and op.body == "json" then body = {} end -- an empty list request is {}

  local req = self.core:prepare {
    method = op.method, path = path, query = next(query) and query or nil, body = body,
    content_type = content_type, headers = opts.headers, timeout = opts.timeout,
  }
  req.operation = op_id
  if opts.dry_run ~= nil then req.dry_run = opts.dry_run end
  if opts.partial ~= nil then
    req.partial = check_partial(opts.partial, 2)
  elseif self.partial then
    req.partial = self.partial
  end
  -- the write guard reads where a task write lands (guard.lua), a
  -- recording transport what was asked for
  if self.guard or self.keep_params then req.params, req.whole_body = params, opts.body end
  return req
end

-- Build the error for a failed response: the documented meaning of the
-- code decides the kind, whatever the HTTP status (the REST API documentation's errors).
local function response_error(self, op_id, status, code, text, headers)
  local info = code and codes[code]
  local kind = info and info.kind or (code and "api" or "http")
  local retryable = info and info.retryable or false
  local rejected = info and info.rejected or nil
  local retry_after = base.retry_after(headers) or (info and info.retry_after)
  if status >= 500 and (code == nil or code == 0) then
    kind, retryable = "http", true -- a server fault; the policy retries only idempotent calls
  end
  if status == 429 and code ~= 22 then
    kind, retryable, rejected = "rate_limit", true, true
    retry_after = retry_after or 1
  end
  if code == 22 then kind, retryable = "quota", false end
  local meaning = info and info.meaning
  local message
  if text == "" then text = nil end
  if info and info.generic and text then
    message = text
  elseif meaning and text then
    message = meaning .. ": " .. text
  else
    message = text or meaning or (status == 429 and "too many requests") or ("HTTP status " .. status)
  end
  return self.core:error {
    kind = kind, message = message, status = status, code = code, operation = op_id,
    retryable = retryable, rejected = rejected, retry_after = retry_after,
  }
end

-- The first array in a result when the documented key is missing: the
-- spec's own examples use other keys (`posts` for `positions`).
local function find_list(result, key)
  local list = result[key]
  if type(list) == "table" then return list end
  for k, v in pairs(result) do
    if k ~= "failures" and type(v) == "table" and (v[1] ~= nil or core.is_array(v)) then return v end
  end
  return core.array()
end

-- A partial update as an error (partial = "error"): the fields the server
-- did not apply, by name, in the message; the rest of the change was made.
local function partial_error(self, op_id, status, body)
  local names = {}
  for _, f in ipairs(body.failures) do
    local field = type(f) == "table" and f.field
    local why = type(f) == "table" and type(f.error) == "string" and (" (" .. f.error .. ")") or ""
    names[#names + 1] = (type(field) == "string" and field or "?") .. why
  end
  local err = self.core:error { kind = "api", status = status, operation = op_id, retryable = false,
    message = "partial update: not applied: " .. table.concat(names, ", ") .. "; the other fields were applied" }
  err.failures, err.result = body.failures, body
  return err
end

--- rest:parse(req, res) -> result | nil, err (pure: no I/O)
-- 201 results carry the new `id`; a 202 result has `queued = true` (the
-- change waits behind a scenario); `failures` of a partial update are
-- always a list; a 302 gives `location`.
function Rest:parse(req, res)
  local op_id = req.operation
  local status = res.status or 0
  local headers = res.headers or {}
  if status >= 300 and status < 400 then
    -- Only where the spec documents a redirect (the file download's 302).
    local op = OPS[op_id]
    local documented = false
    for _, s in ipairs(op and op.success or {}) do
      if s == status then documented = true end
    end
    if documented and headers.location then return { result = "success", location = headers.location } end
    return base.redirect_error(self, op_id, res)
  end
  local body, err = self.core:decode(res, self.nulls)
  if body == nil then
    if status >= 400 or status < 200 then
      return nil, response_error(self, op_id, status, nil, err.message, headers)
    end
    err.operation = op_id
    return nil, err
  end
  if type(body) ~= "table" then
    return nil, self.core:error { kind = "decode", status = status, operation = op_id,
      message = "expected a JSON object, got a JSON " .. type(body) }
  end
  -- Docs say result "fail" with `error`; one client saw "failure" with `message`.
  local failed = body.result == "fail" or body.result == "failure"
  if failed or status >= 400 then
    local code = tonumber(body.code)
    if code then code = math.floor(code) end
    local text = body.error or body.message
    if type(text) ~= "string" then text = nil end
    return nil, response_error(self, op_id, status, code, text, headers)
  end
  if status == 202 then body.queued = true end
  local failures = body.failures
  if type(failures) == "table" and failures[1] == nil and next(failures) ~= nil then
    body.failures = core.array { failures } -- the spec's example gives a single object
  end
  if req.partial == "error" and type(body.failures) == "table" and body.failures[1] ~= nil then
    return nil, partial_error(self, op_id, status, body)
  end
  return body
end

--- rest:call(op_id, params, opts) -> result, meta | nil, err
-- Paced by the limiter, retried by the policy (creates only when the
-- server certainly did not act).
-- A list's `where` (filters by name, planfix_rest/filters.lua) becomes `filters` first.
local function where_applied(self, op_id, params)
  if type(params) ~= "table" or params.where == nil then return params end
  return require("planapi.planfix_rest.filters").apply(self, op_id, params)
end

function Rest:call(op_id, params, opts)
  local err
  params, err = where_applied(self, op_id, params)
  if err ~= nil then return nil, err end
  local req = self:prepare(op_id, params, opts)
  req.idempotent = OPS[op_id].idempotent
  return base.run(self, req)
end

-- The fetch of one page of a paged operation: by chunk (saved report data:
-- ?chunk=0,1,... until an empty chunk) or by offset and pageSize.
local function page_fetch(self, op, op_id, params, page_size, call_opts)
  local fixed = scaffold.copy(params, { "offset", "pageSize", op.paged == "chunk" and "chunk" or nil })
  local list_key = op.list_key
  if op.paged == "chunk" then
    local first = params and params.chunk or 0
    return function(cursor)
      local chunk = cursor and cursor.chunk or first
      local p = scaffold.copy(fixed)
      p.chunk = chunk
      local result, err = self:call(op_id, p, call_opts)
      if not result then return nil, err end
      local items = find_list(result, list_key)
      return items, (#items > 0) and { chunk = chunk + 1 } or nil
    end
  end
  local start = params and params.offset or 0
  return function(cursor)
    local offset = cursor and cursor.offset or start
    local p = scaffold.copy(fixed)
    p.offset, p.pageSize = offset, page_size
    local result, err = self:call(op_id, p, call_opts)
    if not result then return nil, err end
    local items = find_list(result, list_key)
    -- No total is returned: a short page is the last one (the REST API documentation's paging).
    return items, (#items >= page_size) and { offset = offset + page_size } or nil
  end
end

--- rest:pager(op_id, params, opts) -> pager (see pager.lua); rest:pages,
-- rest:each and rest:all (scaffold.lua) take the same arguments.
-- opts: page_size (1..100), cursor (resume), max_pages, max_items, dedupe,
-- and the call options of rest:call.
function Rest:pager(op_id, params, opts)
  local op = lookup(op_id)
  opts = scaffold.pager_options(SPEC, opts)
  if op.paged ~= "body" and op.paged ~= "query" and op.paged ~= "chunk" then
    config_error(("%s is not a paged list; use rest:call"):format(op_id), 2)
  end
  local unchecked = opts.unchecked or self.unchecked
  if params and params.pageSize ~= nil and not unchecked then
    params_check.check(op_id, op, "pageSize", params.pageSize, params_check.type_of(op, "pageSize"),
      op.paged == "query")
  end
  local page_size = scaffold.page_size(SPEC, opts.page_size or (params and params.pageSize), "page_size",
    self.page_size)
  local call_opts = { query = opts.query, body = opts.body, headers = opts.headers, timeout = opts.timeout,
    unchecked = opts.unchecked }
  local applied, err = where_applied(self, op_id, params)
  if err ~= nil then -- the definitions could not be read: the first page fails with why
    return scaffold.walk(opts, function() return nil, err end)
  end
  return scaffold.walk(opts, page_fetch(self, op, op_id, applied, page_size, call_opts))
end

-- ------------------------------------------------------------ guards
-- What guard.lua asks of a client (dry run and write guards).

--- Whether a prepared request changes data (the ops table's writes).
function Rest.is_write(_, req)
  local op = OPS[req.operation]
  return op == nil or op.writes
end

--- The resource of an operation: its path's first segment ("task").
function Rest.resource_of(_, req)
  local op = OPS[req.operation]
  return op and op.path:match "^/([%w_]+)"
end

local function project_of(v)
  return type(v) == "table" and v.id or nil
end

--- Where a task write lands: { task = id | nil, project = id | nil }, or
-- nil for a write that is not on a task.
function Rest.task_write(_, req)
  local op_id, p = req.operation, req.params or {}
  local body = type(req.whole_body) == "table" and req.whole_body or p
  if op_id == "post-task" then return { project = project_of(body.project) } end
  if op_id == "attach-file-to-task" then return { task = p.query_id } end
  if OPS[op_id].path:match "^/task/{id}" then return { task = p.id, project = project_of(body.project) } end
  return nil
end

--- The project a task is in now (one read): id | nil, err.
function Rest:task_project(task)
  local result, err = self:call("get-task-by-id", { id = task, fields = "id,project" })
  if not result then return nil, err end
  return project_of(type(result.task) == "table" and result.task.project)
end

--- rest:download(file_id) -> bytes, meta | nil, err
-- GET /file/{id}/download answers 302 to a presigned URL; that URL is
-- fetched without the Authorization header (it belongs to another host).
function Rest:download(file_id, opts)
  local result, err = self:call("get-file-id-download", { id = file_id }, opts)
  if not result then return nil, err end
  if not result.location then
    return nil, self.core:error { kind = "api", message = "download answered without a redirect",
      operation = "get-file-id-download" }
  end
  local res
  res, err = scaffold.follow(self, "get-file-id-download", result.location, nil, "file download failed")
  if not res then return nil, err end
  return res.body, { status = res.status, headers = res.headers }
end

return Rest
