-- The request log and counters behind GET /_sandbox/log and /_sandbox/stats.
-- Every request under /rest, /xml and /record is appended once, with the status it
-- was answered with, before the response is sent (so a client that reads the
-- log right after its call always finds the entry).
local json = require("sandbox.json")

local M = {}

M.MAX_ENTRIES = 10000        -- oldest entries are dropped beyond this
M.MAX_BODY = 1024 * 1024     -- bodies longer than this are cut in the log

M.entries = {}
M.requests = 0

function M.reset()
  M.entries = {}
  M.requests = 0
end

function M.clear()
  M.entries = {}
end

-- Counts a request as received (even one later answered by a fault).
function M.count()
  M.requests = M.requests + 1
end

local function body_fields(entry, body)
  local truncated = #body > M.MAX_BODY
  local text = truncated and body:sub(1, M.MAX_BODY) or body
  if json.valid_utf8(text) then
    entry.body = text
  else
    -- Binary bodies (uploads) cannot be JSON strings; keep them lossless.
    entry.body = ngx.encode_base64(text)
    entry.body_base64 = true
  end
  if truncated then
    entry.body_truncated = true
    entry.body_size = #body
  end
  entry.json = json.null
  if body ~= "" and not truncated then
    local v = json.decode(body)
    if v ~= nil then
      -- Embed the original text so [] vs {} survives (cjson loses it).
      entry.json = entry.body_base64 and v or json.raw(body)
    end
  end
end

-- req: snapshot from util.request (+ .kind); status: HTTP status answered
-- (444 = connection closed without an answer); extra: merged into the entry.
function M.record(req, status, extra)
  local entry = {
    kind = req.kind,
    method = req.method,
    uri = req.uri,
    path = req.path,
    query = req.query,
    headers = req.headers,
    status = status,
    time = req.time,
    connection = req.connection,
    -- the REST operation that handled it ("POST /task/{id}"), when one did
    operation = req.operation,
  }
  body_fields(entry, req.body or "")
  if extra then
    for k, v in pairs(extra) do entry[k] = v end
  end
  local entries = M.entries
  entries[#entries + 1] = entry
  if #entries > M.MAX_ENTRIES then
    local keep = {}
    for i = #entries - M.MAX_ENTRIES + 1001, #entries do keep[#keep + 1] = entries[i] end
    M.entries = keep
  end
end

-- JSON text of the log (oldest first).
function M.encode()
  local parts = {}
  for i, e in ipairs(M.entries) do
    -- Encode each entry lazily; cached because the log is read often.
    if not e._json then e._json = json.encode(e) end
    parts[i] = e._json
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

return M
