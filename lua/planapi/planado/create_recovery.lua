-- planado/create_recovery.lua: where Planado decides that a create was
-- carried out although its answer was lost, so that one object exists per
-- external_id (the external_id is unique, says Planado's API documentation).
--
-- A POST whose fate is unknown (a timeout, a reset, a 5xx) is never sent
-- blindly again: the object is looked up by its external_id; found means
-- the create happened (`recovered = true`). A later POST refused because the
-- external_id is taken means an earlier attempt won: looked up, recovered.
-- Installed as pd:create and pd:recover_taken by planado/init.lua.
local core = require("planapi.core")

local M = {}

-- The uniqueness refusal of an external_id (unique, says Planado's API documentation). The
-- body's shape is undocumented, so the message is read for the field and the
-- refusal; the sandbox says "external_id: has already been taken" (HTTP 422).
local TAKEN_WORDS = { "taken", "already", "exist", "unique", "duplicate" }
function M.refuses_taken_external_id(status, message)
  if status ~= 409 and status ~= 422 then return false end
  local text = message:lower()
  if not text:find("external", 1, true) then return false end
  for _, word in ipairs(TAKEN_WORDS) do
    if text:find(word, 1, true) then return true end
  end
  return false
end

-- The object a create made, found by its external_id.
local function recovered(found, attempts)
  found.recovered = true
  return found, { status = 200, attempts = attempts, recovered = true }
end

-- A failure after which the POST may have been carried out: a timeout, a
-- reset, a 5xx. Not a refusal before any work (a 429), not an unsent request.
local function ambiguous(err)
  return err.retryable and not err.rejected and err.request_sent ~= false
end

--- pd:create(path, body, opts, ref_path) -> result, meta | nil, err
-- A POST that may have reached the server (a timeout, a reset, a 5xx) is
-- never sent blindly again: with an external_id the object is looked up by
-- it first (GET ref_path/<external_id>); found means it was created, and
-- the result says `recovered = true`; not found sends the POST again. If
-- that POST is refused because the external_id is taken, an earlier attempt
-- won the race after the lookup: the object is looked up again (waiting
-- while it is not visible yet) and returned as recovered. Without an
-- external_id the error is returned.
function M.create(self, path, body, opts, ref_path)
  local ext = type(body) == "table" and body.external_id
  local by_ext = type(ext) == "string" and ext ~= "" and ref_path
    and (ref_path .. "/" .. core.url_escape(ext)) or nil
  local attempt, unsure = 0, false
  while true do
    attempt = attempt + 1
    local result, meta = self:call("POST", path, body, opts)
    if result ~= nil then return result, meta end
    local err = meta
    if unsure and err.external_id_taken then return self:recover_taken(by_ext, err, attempt) end
    if not (by_ext and ambiguous(err)) then return nil, err end
    unsure = true
    -- Pause first: a request still being handled has time to land, so the
    -- lookup sees it instead of a 404 that would send the POST again.
    local wait = self.policy:delay(err, attempt, true)
    if not wait then return nil, err end
    if wait > 0 then self.sleep(wait) end
    local found, ferr = self:call("GET", by_ext)
    if found ~= nil then return recovered(found, attempt) end
    if ferr.status ~= 404 then return nil, err end
  end
end

--- pd:recover_taken(by_ext, taken, attempts): after an ambiguous attempt, a later POST was refused because the
-- external_id is taken: the earlier attempt was carried out. Look the object
-- up, waiting (the policy's backoff, no jitter, as many tries as it allows)
-- while the server does not show it yet. Never an error for an object that
-- exists; an error only when the lookups never find it.
function M.recover_taken(self, by_ext, taken, attempts)
  local lookups = math.max(1, self.policy.attempts)
  for i = 1, lookups do
    local found, ferr = self:call("GET", by_ext)
    if found ~= nil then return recovered(found, attempts) end
    if ferr.status ~= 404 then return nil, ferr end
    if i < lookups then
      local wait = math.min(self.policy.cap, self.policy.base * 2 ^ (i - 1))
      if wait > 0 then self.sleep(wait) end
    end
  end
  local err = self.core:error { kind = "api", status = taken.status, operation = taken.operation,
    retryable = false, message = taken.message .. (" (after an attempt with an unknown outcome; %d lookups by"
      .. " the external_id found nothing)"):format(lookups) }
  err.attempts, err.external_id_taken, err.body = attempts, true, taken.body
  return nil, err
end

return M
