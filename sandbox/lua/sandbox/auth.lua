-- Planfix REST bearer tokens and their scopes.
--
-- A token is { scope = "all" | "readonly", active = bool }. "readonly" may
-- call GET operations and the list/filter POSTs only; anything else answers
-- 405 code 5, which is how Planfix reports a call outside the token's scopes.
local util = require("sandbox.util")
local credentials = require("sandbox.credentials")

local M = {}

local function default_tokens()
  return {
    [credentials.rest_token] = { scope = "all", active = true },
    ["readonly-token"] = { scope = "readonly", active = true },
    ["inactive-token"] = { scope = "all", active = false },
  }
end

M.tokens = default_tokens()

function M.reset()
  M.tokens = default_tokens()
end

-- Merges {token = {scope=..., active=...} | false} into the token table
-- (false removes a token). Returns nil, err on a bad spec.
function M.configure(spec)
  if type(spec) ~= "table" then return nil, "tokens must be an object" end
  for name, t in pairs(spec) do
    if t == false then
      M.tokens[name] = nil
    elseif type(t) == "table" then
      local scope = t.scope or "all"
      if scope ~= "all" and scope ~= "readonly" then
        return nil, "token scope must be 'all' or 'readonly'"
      end
      M.tokens[name] = { scope = scope, active = t.active ~= false }
    else
      return nil, "token spec must be an object or false"
    end
  end
  return true
end

-- The token of the request: the Bearer header, or for GET only the
-- access_token query parameter (as the Planfix docs allow).
function M.request_token(req)
  local h = req.headers["authorization"]
  if type(h) == "table" then h = h[1] end
  if type(h) == "string" then
    local tok = h:match("^%s*[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
    if tok then return tok end
    return nil
  end
  if req.method == "GET" then
    local q = util.query_value(req.query, "access_token")
    if type(q) == "string" and q ~= "" then return q end
  end
  return nil
end

-- Returns nil when authenticated, else status, code, message.
function M.check(req)
  local tok = M.request_token(req)
  local t = tok and M.tokens[tok]
  if not t then return 401, 1, "Access denied, unknown token" end
  if not t.active then return 401, 2, "Token not active" end
  req.token = tok
  req.scope = t.scope
  return nil
end

-- Whether the request's token may call an operation (`write` = changes data).
function M.allows(req, write)
  return not write or req.scope == "all"
end

return M
