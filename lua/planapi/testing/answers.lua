-- testing/answers.lua: well-formed answers of each API for testing.fake,
-- shaped as the vendors document them (spec/21 runs each through the real
-- clients' parsers; spec/22 checks the REST bodies against the official
-- OpenAPI file's response schemas).
--
--   testing.rest.task_list { { id = 1, name = "Fix" } }    testing.rest.error { code = 1000, status = 404 }
--   testing.xml.list("tasks", "task", { { id = 1 } })      testing.xml.error("0005")
--   testing.planado.list("jobs", { ... })                  testing.planado.rate_limited { retry_after = 3 }
--   testing.failure { request_sent = false }               -- the transport's nil, err
local core = require "planapi.core"
local config_error = require "planapi.config_error"

local M = { rest = {}, xml = {}, planado = {} }

local JSON = { ["Content-Type"] = "application/json; charset=utf-8" }

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

-- An answer with a JSON body: encoded here, so what the client decodes is
-- text, as from a server.
local function json(status, body, headers)
  local h = copy(JSON)
  for k, v in pairs(headers or {}) do h[k] = v end
  return { status = status, headers = h, body = core.json_encode(body) }
end
M.json = json

local function list(items, what)
  if items ~= nil and type(items) ~= "table" then config_error(what .. " must be a list of tables", 3) end
  return core.array(copy(items))
end

-- ------------------------------------------------------------ Planfix REST
-- The REST API documentation: every answer has result "success" or "fail".
local rest = M.rest

--- rest.ok(fields [, status]) -> a 200 answer { result = "success", fields... }
function rest.ok(fields, status)
  local body = copy(fields)
  body.result = "success"
  return json(status or 200, body)
end

--- rest.list(key, items [, fields]) -> one page of a list: { result, [key] = items }
function rest.list(key, items, fields)
  local body = copy(fields)
  body[key] = list(items, "rest.list's items")
  return rest.ok(body)
end

--- rest.task_list(tasks) -> a page of get-task-list (a short page is the last one).
function rest.task_list(tasks) return rest.list("tasks", tasks) end

--- rest.created(id) -> the 201 of a create: { result = "success", id = id }
function rest.created(id) return rest.ok({ id = id }, 201) end

--- rest.queued([fields]) -> 202: an update waiting behind a scenario (the result has queued = true).
function rest.queued(fields) return rest.ok(fields, 202) end

--- rest.error{ code =, message =, status = 400, retry_after = } -> { result = "fail", code, error }
function rest.error(e)
  e = e or {}
  local headers = e.retry_after and { ["Retry-After"] = tostring(e.retry_after) } or nil
  return json(e.status or 400, { result = "fail", code = e.code or 0, error = e.message or "Request failed" }, headers)
end

--- rest.rate_limited{ retry_after = } -> a 429, as the server answers too many requests.
function rest.rate_limited(e)
  e = e or {}
  return rest.error { status = 429, code = 0, message = "Too many requests", retry_after = e.retry_after }
end

-- ------------------------------------------------------------ Planfix XML
-- The XML API documentation: <response status="ok"> with the method's
-- elements, or status="error" with <code> and <message>. Tables as the
-- client's requests take them: a list repeats its element, "@name" is an
-- attribute. The bytes come from the same encoder as the requests.
local xml = M.xml
local XML = { ["Content-Type"] = "application/xml; charset=utf-8" }

local function xml_answer(status, children)
  local text = core.xml_encode("response", children or {})
  text = text:gsub('<request method="response">', ('<response status="%s">'):format(status), 1)
    :gsub("</request>$", "</response>")
  text = text:gsub('<request method="response"/>', ('<response status="%s"/>'):format(status), 1)
  return { status = 200, headers = copy(XML), body = text }
end

--- xml.ok(children) -> <response status="ok">children</response>
function xml.ok(children) return xml_answer("ok", children) end

--- xml.list(container, item, items [, { total = n, page = }]) -> a page of a list method
-- (task.getList: xml.list("tasks", "task", {...})); count is #items, totalCount total or #items.
function xml.list(container, item, items, opts)
  opts = opts or {}
  local node = { ["@count"] = #(items or {}), ["@totalCount"] = opts.total or #(items or {}) }
  node[item] = list(items, "xml.list's items")
  if #node[item] == 0 then node[item] = nil end
  return xml.ok { [container] = node }
end

--- xml.login(sid) -> auth.login's answer.
function xml.login(sid) return xml.ok { sid = sid } end

--- xml.error(code [, message]) -> <response status="error"><code>..</code><message>..</message></response>
function xml.error(code, message)
  if type(code) ~= "string" then config_error("xml.error's code is the documented text, such as \"0005\"", 2) end
  return xml_answer("error", { code = code, message = message })
end

-- ------------------------------------------------------------ Planado
-- Planado's API v2 documentation: JSON objects; its error bodies are
-- undocumented, so the sandbox's { errors = { { message } } } shape.
local planado = M.planado

--- planado.ok(body [, status]) -> a JSON answer as it is.
function planado.ok(body, status) return json(status or 200, body or {}) end

--- planado.object(kind, fields) -> { [kind] = fields }, as GET jobs/{uuid} answers.
function planado.object(kind, fields) return json(200, { [kind] = fields }) end

--- planado.list(key, items) -> a page of a list: { [key] = items } (an empty page ends the list).
function planado.list(key, items) return json(200, { [key] = list(items, "planado.list's items") }) end

--- planado.created(key, uuid) -> a create's answer: { [key] = uuid } (jobs: "job_uuid").
function planado.created(key, uuid) return json(200, { [key] = uuid }) end

--- planado.error(status, message) -> { errors = { { message } } }
function planado.error(status, message)
  return json(status, { errors = core.array { { message = message or "Request failed" } } })
end

--- planado.rate_limited{ retry_after =, text = false } -> a 429 (Retry-After when given), or
-- with text = true the 200 text/plain "Rate Limit Exceeded" Planado also sends.
function planado.rate_limited(e)
  e = e or {}
  if e.text then
    return { status = 200, headers = { ["Content-Type"] = "text/plain" }, body = "Rate Limit Exceeded" }
  end
  local headers = e.retry_after and { ["Retry-After"] = tostring(e.retry_after) } or nil
  return json(429, { errors = core.array { { message = "Rate Limit Exceeded" } } }, headers)
end

-- ------------------------------------------------------------ any API
--- failure{ message =, request_sent = false | true | nil, timeout = true, kind =, retryable = true }:
-- the transport fails instead of answering: a `transport` error (a reset), or a `timeout` one.
function M.failure(f)
  return { failure = copy(f) }
end

--- answer{ status =, headers =, body = text | table (sent as JSON), delay = virtual seconds }
function M.answer(a)
  return copy(a)
end

return M
