-- testing/fake.lua: a transport for any planapi client that answers from a
-- script instead of the network, records what was sent in API terms, and
-- keeps its own time (clock, sleep, wall_clock), so paced and retried
-- calls run at once and a spec can read the time they would have taken.
--
--   local fake = testing.fake { testing.rest.task_list { { id = 1 } } }         -- answers in order
--   local fake = testing.fake { handlers = { ["get-task-list"] = ..., ["GET jobs/*"] = ... } }
--   local rest = planapi.planfix_rest { account = "acme", token = "t", transport = fake }
--   fake.requests[1].operation, .params, .body, .query, .method, .path, .at
--
-- client_base takes the fake's clock, sleep and wall_clock when the client
-- is given none (a transport that is a callable table may keep its time).
local core = require "planapi.core"
local config_error = require "planapi.config_error"

local Fake = {}
Fake.__index = Fake

-- The virtual clock starts here (any positive number: GCRA compares
-- differences); the wall clock at 2026-01-01T00:00:00Z.
local START, EPOCH = 1000, 1767225600

local OPTIONS = { handlers = true, answers = true, start = true, epoch = true, latency = true, default = true }

-- A copy of v: tables copied at every depth, their metatables (planapi.array's
-- mark) kept, so a record does not change when the caller reuses a table.
local function deep_copy(v, seen)
  if type(v) ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  local out = {}
  seen[v] = out
  for k, x in pairs(v) do out[deep_copy(k, seen)] = deep_copy(x, seen) end
  return setmetatable(out, getmetatable(v))
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- The query of a URL as a table: name -> text, a repeated name -> a list.
local function query_of(url)
  local q = url:match "%?([^#]*)"
  local out = {}
  if not q or q == "" then return out end
  for pair in q:gmatch "[^&]+" do
    local k, v = pair:match "^([^=]*)=?(.*)$"
    k, v = unescape(k), unescape(v)
    local old = out[k]
    if old == nil then
      out[k] = v
    elseif type(old) == "table" then
      old[#old + 1] = v
    else
      out[k] = { old, v }
    end
  end
  return out
end

local function header(headers, name)
  for k, v in pairs(headers or {}) do
    if type(k) == "string" and k:lower() == name then return v end
  end
  return nil
end

-- Which API a prepared request is for: the XML API posts XML, Planado
-- names its operations "METHOD path", REST by its operationId.
local function api_of(req)
  local ctype = header(req.headers, "content-type") or ""
  if ctype:find("xml", 1, true) then return "planfix_xml" end
  local op = req.operation
  if op == nil then return "other" end
  if op:match "^%u+ " then return "planado" end
  return "planfix_rest"
end

-- The body as the API means it: JSON or XML decoded, anything else (a
-- multipart upload) as its text.
local function decoded_body(api, body)
  if type(body) ~= "string" or body == "" then return nil end
  if api == "planfix_xml" then return core.xml_decode(body, {}) or body end
  local first = body:match "^%s*(.)"
  if first == "{" or first == "[" then
    local v = core.json_decode(body, { nulls = "keep" })
    if v ~= nil then return v end
  end
  return body
end

-- A Planado filter back in the shape it was given: "status[]" a list,
-- "scheduled_at[after]" a nested table (the client flattens them so).
local function unflatten(query)
  local out = {}
  for k, v in pairs(query) do
    local name, subs = k:match "^([^%[]+)(.*)$"
    local node, key = out, name or k
    for sub in (subs or ""):gmatch "%[([^%]]*)%]" do
      if sub == "" then
        v = type(v) == "table" and v or { v }
        break
      end
      node[key] = type(node[key]) == "table" and node[key] or {}
      node, key = node[key], sub
    end
    node[key] = v
  end
  return out
end

-- Planado's parameters: the query of a read, the body of a write.
local function planado_params(record)
  if record.method == "GET" or record.method == "DELETE" then return unflatten(record.query) end
  return record.body
end

--- The record of one prepared request, in API terms.
local function record_of(self, req)
  local api = api_of(req)
  local r = {
    n = #self.requests + 1, api = api, operation = req.operation, method = req.method, url = req.url,
    path = req.url:match "^%a[%w+.-]*://[^/]*([^?#]*)" or req.url, query = query_of(req.url),
    headers = deep_copy(req.headers or {}), raw = req.body, idempotent = req.idempotent, at = self:now(),
  }
  r.body = decoded_body(api, req.body)
  if api == "planado" then
    r.params = deep_copy(planado_params(r))
  else
    r.params = deep_copy(req.params)
  end
  return r
end

-- ------------------------------------------------------------ matching
-- "GET jobs/*" matches "GET jobs/<anything>"; "POST /task/list" the end
-- of the URL's path, with its method.
local function key_matches(key, record)
  local method, rest = key:match "^(%u+) (.+)$"
  if not method or method ~= record.method then return false end
  local op = record.operation or ""
  local prefix = rest:match "^(.-)%*$"
  if prefix then
    return op:sub(1, #method + 1 + #prefix) == method .. " " .. prefix
      or (prefix:sub(1, 1) == "/" and record.path:find(prefix, 1, true) ~= nil)
  end
  return rest:sub(1, 1) == "/" and record.path:sub(-#rest) == rest
end

-- The handler for a record: by operation (REST operationId, XML method,
-- Planado "METHOD path"), then the most specific "METHOD pattern" key.
local function handler_for(self, record)
  local handlers = self.handlers
  local h = record.operation and handlers[record.operation]
  if h ~= nil then return h, record.operation end
  local best
  for key in pairs(handlers) do
    if type(key) == "string" and key_matches(key, record) and (best == nil or #key > #best) then best = key end
  end
  if best then return handlers[best], best end
  return self.default, "default"
end

local function is_response(v)
  return type(v) == "table" and (v.status ~= nil or v.failure ~= nil)
end

-- The answer a handler gives record (nil: none). A list of answers is
-- used one after the other, each once.
local function from_handler(self, h, key, record)
  if type(h) == "function" then return h(record, self) end
  if is_response(h) then return h end
  if type(h) == "table" then
    local used = (self.used[key] or 0) + 1
    self.used[key] = used
    return h[used]
  end
  return nil
end

-- The next of the answers in order, or nil.
local function in_order(self, record)
  if self.next >= #self.answers then return nil end
  self.next = self.next + 1
  local answer = self.answers[self.next]
  if type(answer) == "function" then answer = answer(record, self) end
  return answer
end

-- A handler's answer; without one, the next in order; then default.
local function next_answer(self, record)
  local h, key = handler_for(self, record)
  if h ~= nil and key ~= "default" then
    local answer = from_handler(self, h, key, record)
    if answer == nil then return nil, ("the handler %q has no answer left"):format(key) end
    return answer
  end
  local answer = in_order(self, record)
  if answer ~= nil then return answer end
  if h ~= nil then
    answer = from_handler(self, h, key, record)
    if answer == nil then return nil, "the default handler gave no answer" end
    return answer
  end
  if next(self.handlers) ~= nil then
    return nil, ("no handler for it and the %d answers in order were used"):format(#self.answers)
  end
  return nil, ("the script has %d answers"):format(#self.answers)
end

local function unexpected(self, record, why)
  record.unexpected = true
  self.unexpected[#self.unexpected + 1] = record
  local what = record.operation and (record.operation .. ", ") or ""
  error(core.error { kind = "config", message = ("planapi.testing: unexpected request %d (%s%s %s): %s")
    :format(record.n, what, record.method, record.path, why) }, 0)
end

-- ------------------------------------------------------------ answering
-- A failure answer (testing.failure): the transport's nil, err, of the
-- kind libcurl's would be (a timeout is its own kind).
local function failure(f)
  local kind = f.kind or (f.timeout and "timeout") or "transport"
  local err = core.error { kind = kind, message = f.message or (f.timeout and "operation timed out")
    or "connection reset by peer", retryable = f.retryable ~= false }
  err.request_sent = f.request_sent
  return nil, err
end

-- The response the client's parser reads: body text, headers copied.
local function response(answer)
  local body = answer.body
  if type(body) == "table" then body = core.json_encode(body) end
  return { status = answer.status, headers = deep_copy(answer.headers or {}), body = body or "" }
end

--- The transport: fake(req) -> res | nil, err; raises on an unexpected request.
function Fake:__call(req)
  local record = record_of(self, req)
  self.requests[#self.requests + 1] = record
  local answer, why = next_answer(self, record)
  if answer == nil then unexpected(self, record, why) end
  if not is_response(answer) then
    unexpected(self, record, "its answer is no response (status =, headers =, body =) nor testing.failure")
  end
  record.answer = answer
  local delay = (answer.delay or 0) + self.latency
  if delay > 0 then self:advance(delay) end
  if answer.failure then return failure(answer.failure) end
  return response(answer)
end

-- ------------------------------------------------------------ time
--- fake:now() -> the virtual clock's time (fake.clock is the same, a function).
function Fake:now()
  return self.start + self.elapsed
end

--- fake:advance(seconds): time passes without a sleep (between two calls).
function Fake:advance(seconds)
  self.elapsed = self.elapsed + seconds
end

-- ------------------------------------------------------------ questions
--- fake:count(operation) -> how many requests named it.
function Fake:count(operation)
  local n = 0
  for _, r in ipairs(self.requests) do
    if r.operation == operation then n = n + 1 end
  end
  return n
end

--- fake:operations() -> the operations of the requests, in order.
function Fake:operations()
  local out = {}
  for i, r in ipairs(self.requests) do out[i] = r.operation or (r.method .. " " .. r.path) end
  return out
end

--- fake:assert_done(): every scripted answer was used (raises otherwise).
function Fake:assert_done()
  local left = #self.answers - self.next
  if left > 0 then
    config_error(("planapi.testing: %d scripted answers were not asked for (%d requests came)")
      :format(left, #self.requests), 2)
  end
  if #self.unexpected > 0 then
    config_error(("planapi.testing: %d unexpected requests"):format(#self.unexpected), 2)
  end
  return true
end

local function check_options(opts)
  for k in pairs(opts) do
    if type(k) ~= "number" and not OPTIONS[k] then
      config_error(("unknown testing.fake option '%s' (valid: the answers in order, handlers, answers, default, "
        .. "start, epoch, latency)"):format(tostring(k)), 3)
    end
  end
  if opts.handlers ~= nil and type(opts.handlers) ~= "table" then
    config_error("testing.fake option 'handlers' must be a table (operation -> answer)", 3)
  end
  if opts.answers ~= nil and opts[1] ~= nil then
    config_error("testing.fake takes its answers in order as its list or as 'answers', not both", 3)
  end
end

--- testing.fake{ answer, answer, ... | answers = {...}, handlers = { [operation] = answer | { answers } |
--   function(request, fake) -> answer }, default = answer | function, start = 1000, epoch = 1767225600,
--   latency = 0 (virtual seconds each request takes) } -> fake
function Fake.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then config_error("testing.fake needs a table", 2) end
  check_options(opts)
  local answers = opts.answers or {}
  if opts.answers == nil then
    for i, a in ipairs(opts) do answers[i] = a end
  end
  local self = setmetatable({ requests = {}, unexpected = {}, sleeps = {}, slept = 0, answers = answers,
    handlers = opts.handlers or {}, default = opts.default, used = {}, next = 0, keep_params = true,
    start = opts.start or START, elapsed = 0, latency = opts.latency or 0, epoch = opts.epoch or EPOCH }, Fake)
  self.clock = function() return self:now() end
  self.sleep = function(s)
    if s > 0 then
      self.sleeps[#self.sleeps + 1] = s
      self.slept = self.slept + s
      self:advance(s)
    end
  end
  -- whole seconds, as os.time gives (the quota reads the day from it)
  self.wall_clock = function() return math.floor(self.epoch + self.elapsed) end
  return self
end

Fake.deep_copy = deep_copy
return Fake
