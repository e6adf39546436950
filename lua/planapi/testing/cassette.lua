-- testing/cassette.lua: record real exchanges of any client into a file,
-- and replay them without a network (README "Recorded sessions").
--
--   local rec = cassette.record("spec/cassettes/export.json")
--   local rest = rec:wrap(planapi.planfix_rest { ... })   -- its own transport, recorded
--   ... run the script ...; assert(rec:save())
--
--   local tape = cassette.replay("spec/cassettes/export.json")
--   local rest = tape:wrap(planapi.planfix_rest { ..., rate = false })
--   ... the same script: the same answers, nothing sent ...; assert(tape:done())
--
-- A cassette wraps the transport (a function of the request, the one every
-- client calls: libcurl, nginx's cosockets, a user's), so it serves all three
-- clients and every operation. The file is pretty JSON with sorted keys, so
-- a diff of two recordings reads well; what it must not hold is masked on
-- write (testing/cassette_mask.lua).
local core = require("planapi.core")
local base = require("planapi.client_base")
local config_error = require("planapi.config_error")
local options = require("planapi.options")
local pretty_json = require("planapi.pretty_json")
local mask = require("planapi.testing.cassette_mask")
local Fake = require("planapi.testing.fake")

local M = {}

M.VERSION = 1

-- ------------------------------------------------------------ bytes
-- JSON strings are UTF-8: a body that is not (a file's bytes) is kept in
-- base64.

-- The range of the byte after a lead byte that is not 80-BF: what keeps out
-- overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
local SECOND = { [0xE0] = { 0xA0, 0xBF }, [0xED] = { 0x80, 0x9F }, [0xF0] = { 0x90, 0xBF }, [0xF4] = { 0x80, 0x8F } }

-- UTF-8 as the core's JSON encoder takes it (RFC 3629). utf8.len is the fast
-- way where it is as strict: Lua 5.3's takes surrogates (ED A0-BF ..), which
-- the encoder refuses; LuaJIT has no utf8 library.
local function valid_utf8(s)
  if utf8 and utf8.len then return utf8.len(s) ~= nil and not s:find "\237[\160-\191]" end
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len = c < 0x80 and 1 or (c >= 0xC2 and c < 0xE0) and 2 or (c >= 0xE0 and c < 0xF0) and 3
      or (c >= 0xF0 and c < 0xF5) and 4 or nil
    if not len or i + len - 1 > n then return false end
    for j = i + 1, i + len - 1 do
      local b = s:byte(j)
      local range = j == i + 1 and SECOND[c]
      if b < (range and range[1] or 0x80) or b > (range and range[2] or 0xBF) then return false end
    end
    i = i + len
  end
  return true
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_VALUE = {}
for i = 1, 64 do B64_VALUE[B64:byte(i)] = i - 1 end

local function unbase64(s)
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    local v = B64_VALUE[s:byte(i)]
    if v then
      bits, nbits = bits * 64 + v, nbits + 6
      if nbits >= 8 then
        nbits = nbits - 8
        local byte = math.floor(bits / 2 ^ nbits)
        out[#out + 1] = string.char(byte)
        bits = bits - byte * 2 ^ nbits
      end
    end
  end
  return table.concat(out)
end

-- Sets t.body or t.body_base64.
local function put_body(t, body)
  if body == nil then return end
  if valid_utf8(body) then t.body = body else t.body_base64 = core.base64(body) end
end

local function body_of(t)
  if t.body_base64 then return unbase64(t.body_base64) end
  return t.body
end

-- ------------------------------------------------------------ masking

-- The text function of a cassette: the client's redaction and the
-- cassette's own secrets (nil when masking is off).
local function redactor(client, secrets, on)
  if not on then return function(s) return s end end
  local own = client and client.core
  return function(s)
    if own then s = own:redact(s) end
    if #secrets > 0 then s = core.redact(s, secrets) end
    return s
  end
end

local function masked_headers(headers, redact, masking)
  local out = {}
  for name, value in pairs(headers or {}) do
    if type(value) == "table" then value = table.concat(value, ", ") end
    name, value = tostring(name), tostring(value)
    out[name] = masking and redact(mask.header(name, value)) or value
  end
  return out
end

local function content_type(headers)
  for name, value in pairs(headers) do
    if name:lower() == "content-type" then return value end
  end
  return nil
end

-- The request as the cassette keeps it: { operation, request = {...} }.
local function masked_request(req, redact, masking)
  local headers = masked_headers(req.headers, redact, masking)
  local r = { method = req.method, url = req.url, headers = headers }
  if masking then r.url = redact(mask.url(req.url or "")) end
  local body = req.body
  if body ~= nil and masking and valid_utf8(body) then
    body = redact(mask.body(body, content_type(headers), req.operation))
  end
  put_body(r, body)
  return r
end

local function masked_response(res, redact, masking, operation)
  local headers = {}
  for name, value in pairs(masked_headers(res.headers, redact, masking)) do headers[name:lower()] = value end
  local r = { status = tonumber(res.status) or 0, headers = headers }
  -- a download streamed into a file (opts.path): its bytes are on disk only
  if res.file then r.file = true end
  local body = res.body
  if body ~= nil and masking and valid_utf8(body) then
    body = redact(mask.body(body, headers["content-type"], operation))
  end
  put_body(r, body)
  return r
end

-- The fields of a transport error that a replay gives back.
local ERROR_FIELDS = { "kind", "message", "status", "code", "retryable", "rejected", "request_sent", "retry_after" }

local function masked_error(err, redact, masking)
  local e = {}
  for _, k in ipairs(ERROR_FIELDS) do
    local v = type(err) == "table" and err[k] or nil
    if k == "message" and v == nil then v = tostring(err) end
    if type(v) == "string" and masking then v = redact(v) end
    e[k] = v
  end
  return e
end

-- ------------------------------------------------------------ the file

-- The file's text from each exchange's text (encoded once, when it was
-- recorded: a long session is not encoded again at every exchange), laid
-- out as pretty_json lays out the whole document.
local function encode(texts)
  if #texts == 0 then return pretty_json { planapi_cassette = M.VERSION, exchanges = core.array {} } end
  return ('{\n  "exchanges": [\n    %s\n  ],\n  "planapi_cassette": %d\n}\n')
    :format(table.concat(texts, ",\n    "), M.VERSION)
end

local function read_file(path)
  local f, why = io.open(path, "rb")
  if not f then config_error(("cassette %s cannot be read: %s"):format(path, tostring(why)), 4) end
  local text = f:read "a"
  f:close()
  local ok, doc = pcall(core.json_decode, text)
  if not ok or type(doc) ~= "table" or doc.planapi_cassette ~= M.VERSION or type(doc.exchanges) ~= "table" then
    config_error(("cassette %s is not a planapi cassette (version %d)"):format(path, M.VERSION), 4)
  end
  return doc.exchanges
end

local function check_options(what, opts, types)
  if opts == nil then return {} end
  if type(opts) ~= "table" then config_error(what .. " options must be a table", 3) end
  options.check(what, opts, 3, types)
  return opts
end

-- ------------------------------------------------------------ recording

local Recorder = {}
Recorder.__index = Recorder

local RECORD_OPTIONS = { secrets = "table", mask = "boolean" }

--- cassette.record(path, { secrets = { ... }, mask = true }) -> recorder
-- secrets: more strings to mask wherever they appear (the clients' own are
-- masked already); mask = false writes everything as it was (never for a
-- file that leaves your machine).
function M.record(path, opts)
  if type(path) ~= "string" or path == "" then config_error("cassette.record needs the cassette's path", 2) end
  opts = check_options("cassette.record", opts, RECORD_OPTIONS)
  for _, s in ipairs(opts.secrets or {}) do
    if type(s) ~= "string" then config_error("cassette.record option 'secrets' must be a list of strings", 2) end
  end
  return setmetatable({ path = path, exchanges = {}, texts = {}, secrets = opts.secrets or {},
    masking = opts.mask ~= false }, Recorder)
end

--- The exchange of req appended and the file written again (a script that
-- stops halfway leaves what it did).
function Recorder:add(req, res, err, redact)
  local e = { operation = req.operation, request = masked_request(req, redact, self.masking) }
  if res then
    e.response = masked_response(res, redact, self.masking, req.operation)
  else
    e.error = masked_error(err, redact, self.masking)
  end
  self.exchanges[#self.exchanges + 1] = e
  self.texts[#self.texts + 1] = pretty_json(e, 2)
  self:save()
end

--- rec:save() -> true | nil, err (an io error): the file as recorded so far.
function Recorder:save()
  local ok, err = core.write_file_durably(self.path, encode(self.texts))
  self.save_error = not ok and err or nil
  if not ok then return nil, err end
  return true
end

--- rec:transport(inner [, client]) -> a transport function that sends
-- through inner and records: the `transport` option of any client.
function Recorder:transport(inner, client)
  local mt = type(inner) == "table" and getmetatable(inner)
  if type(inner) ~= "function" and not (mt and mt.__call) then
    config_error("cassette: record needs the transport to record (a function or a callable table)", 2)
  end
  local redact = redactor(client, self.secrets, self.masking)
  return function(req)
    local res, err = inner(req)
    self:add(req, res, err, redact)
    return res, err
  end
end

--- rec:wrap(client) -> client, its own transport now recorded (libcurl,
-- cosockets or the function it was given), its own secrets masked.
function Recorder:wrap(client)
  if type(client) ~= "table" or type(client.transport) ~= "function" then
    config_error("cassette: wrap needs a planapi client", 2)
  end
  client.transport = self:transport(client.transport, client)
  return client
end

-- ------------------------------------------------------------ replaying

local Player = {}
Player.__index = Player

local REPLAY_OPTIONS = { order = "string", reuse = "boolean", secrets = "table" }

--- cassette.replay(path, { order = "strict" | "any", reuse = false }) -> player
-- order "strict" (default): each request must be the next one recorded;
-- "any": any recorded exchange not played yet. reuse: one played already
-- may answer again (a poll).
function M.replay(path, opts)
  if type(path) ~= "string" or path == "" then config_error("cassette.replay needs the cassette's path", 2) end
  opts = check_options("cassette.replay", opts, REPLAY_OPTIONS)
  if opts.order ~= nil and opts.order ~= "strict" and opts.order ~= "any" then
    config_error(("cassette.replay option 'order' must be \"strict\" or \"any\" (got %q)"):format(opts.order), 2)
  end
  local exchanges = read_file(path)
  local terms = {}
  for i, e in ipairs(exchanges) do
    local r = e.request or {}
    terms[i] = mask.terms { operation = e.operation, method = r.method, url = r.url, body = body_of(r) }
  end
  local self = setmetatable({ path = path, exchanges = exchanges, terms = terms, played = {}, requests = 0,
    order = opts.order or "strict", reuse = opts.reuse == true, secrets = opts.secrets or {} }, Player)
  -- Its own time, a fake's (testing/fake.lua): a client given
  -- transport = tape paces and retries in it, so a replay runs at once.
  local time = Fake.new {}
  self.time, self.clock, self.sleep, self.wall_clock = time, time.clock, time.sleep, time.wall_clock
  return self
end

-- The recorded answer: a fresh response, or the recorded failure.
local function answer_of(e, i, path)
  if e.error then
    local err = core.error { kind = e.error.kind or "transport", message = e.error.message or "recorded failure" }
    for _, k in ipairs(ERROR_FIELDS) do
      if e.error[k] ~= nil then err[k] = e.error[k] end
    end
    return nil, err
  end
  local r = e.response or {}
  if r.file then
    return nil, core.error { kind = "config", retryable = false, request_sent = false, message = ("cassette %s: "
      .. "exchange %d was a download into a file (opts.path), whose content a cassette does not keep: record "
      .. "it without a path"):format(path, i) }
  end
  local headers = {}
  for k, v in pairs(r.headers or {}) do headers[k] = v end
  return { status = r.status, headers = headers, body = body_of(r) or "" }
end

-- The exchanges a request may play, in the order they are tried.
function Player:candidates()
  local out = {}
  for i = 1, #self.exchanges do
    if not self.played[i] then
      out[#out + 1] = i
      if self.order == "strict" then break end
    end
  end
  if self.reuse then
    for i = 1, #self.exchanges do
      if self.played[i] then out[#out + 1] = i end
    end
  end
  return out
end

local function describe(terms)
  return ("%s (%s %s)"):format(tostring(terms.operation), tostring(terms.method), tostring(terms.path))
end

local function shown(v)
  if type(v) == "table" then v = core.json_encode(v) end
  v = tostring(v)
  if #v > 40 then v = v:sub(1, 37) .. "..." end
  return v
end

-- The value at a difference's path ("body.task.title") in terms.
local function value_at(terms, path)
  local v = terms
  for part in path:gmatch "[^.]+" do
    if type(v) ~= "table" then return nil end
    v = v[part] ~= nil and v[part] or v[tonumber(part)]
  end
  return v
end

-- How far a recorded request is from a live one: the fields that differ,
-- weighted (a different operation is farther than a different body).
local WEIGHTS = { operation = 8, method = 4, path = 4, query = 2, body = 1 }
local function distance(recorded, live)
  local d = 0
  for field, weight in pairs(WEIGHTS) do
    if mask.difference(recorded[field], live[field], field) then d = d + weight end
  end
  return d
end

-- The recorded exchange nearest to a live request: the ones it may play
-- first (so a tie names the next one expected), then the rest.
function Player:closest(live)
  local best, best_d, tried = nil, nil, {}
  local order = self:candidates()
  for i = 1, #self.exchanges do order[#order + 1] = i end
  for _, i in ipairs(order) do
    if not tried[i] then
      tried[i] = true
      local d = distance(self.terms[i], live)
      if not best_d or d < best_d then best, best_d = i, d end
    end
  end
  return best, best_d
end

-- Why exchange i did not answer live: "matches exchange 3, played already",
-- or where they first differ.
function Player:why_not(i, live)
  local head = ("exchange %d, %s"):format(i, describe(self.terms[i]))
  local where = mask.difference(self.terms[i], live, "")
  if where then
    where = where:sub(2)
    return ("the closest recorded is %s%s, which differs in %s (recorded %s, sent %s)"):format(head,
      self.played[i] and " (played already)" or "", where, shown(value_at(self.terms[i], where)),
      shown(value_at(live, where)))
  end
  if self.played[i] then return ("it matches %s, played already (reuse = true plays it again)"):format(head) end
  local next_one = self:candidates()[1]
  return ("it matches %s, but exchange %d comes first (order = \"strict\"; \"any\" allows it)")
    :format(head, next_one or 0)
end

-- The error for a request no recorded exchange answers: it names the
-- request, the closest recorded one and their first difference.
function Player:unexpected(live)
  local message = ("unexpected request %d to cassette %s: %s"):format(self.requests, self.path, describe(live))
  local best = self:closest(live)
  if best then
    message = message .. "; " .. self:why_not(best, live)
  else
    message = message .. "; the cassette holds no exchange"
  end
  return core.error { kind = "config", message = message, operation = live.operation, retryable = false,
    request_sent = false }
end

--- player:answer(req [, redact]) -> res | nil, err: the recorded answer to req.
function Player:answer(req, redact)
  self.requests = self.requests + 1
  redact = redact or redactor(nil, self.secrets, true)
  local r = masked_request(req, redact, true)
  local live = mask.terms { operation = req.operation, method = r.method, url = r.url, body = body_of(r) }
  for _, i in ipairs(self:candidates()) do
    if not mask.difference(self.terms[i], live, "") then
      self.played[i] = true
      return answer_of(self.exchanges[i], i, self.path)
    end
  end
  return nil, self:unexpected(live)
end

--- player:transport() -> the `transport` option of a client: answers from
-- the cassette, never sends.
function Player:transport()
  return function(req) return self:answer(req) end
end

--- transport = player: the same, and the client takes the player's time
-- (player.time: a fake's clock, sleep and wall_clock) unless given its own.
function Player:__call(req)
  return self:answer(req)
end

--- player:wrap(client) -> client, answered from the cassette (pacing and
-- retries still run: make the client with rate = false for instant replays).
function Player:wrap(client)
  if type(client) ~= "table" or type(client.transport) ~= "function" then
    config_error("cassette: wrap needs a planapi client", 2)
  end
  local redact = redactor(client, self.secrets, true)
  client.transport = function(req)
    local ok, cerr = base.confirm_send(req)
    if not ok then return nil, cerr end
    return self:answer(req, redact)
  end
  return client
end

--- player:done() -> true | nil, err naming the exchanges never requested.
function Player:done()
  local left = {}
  for i = 1, #self.exchanges do
    if not self.played[i] then left[#left + 1] = ("%d %s"):format(i, describe(self.terms[i])) end
  end
  if #left == 0 then return true end
  return nil, core.error { kind = "config", retryable = false, message = ("cassette %s: %d recorded exchange(s) "
    .. "never requested: %s"):format(self.path, #left, table.concat(left, ", ", 1, math.min(#left, 5))) }
end

return M
