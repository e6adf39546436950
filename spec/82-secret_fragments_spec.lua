-- No fragment of a secret in any output (issue 13 §3). A server that echoes
-- the request (a debugging proxy's 502 page, an API that repeats the
-- credentials it refused) must not get any part of a secret into an error:
-- not the whole secret, and not the piece a cut to a snippet leaves.
--
-- The oracle is independent of the redaction code: a plain substring search
-- for every 6-character window of each secret, and of the forms the spec
-- itself encodes it in (JSON-escaped, URL-encoded, XML-escaped), over every
-- string an error exposes (its fields, nested tables, tostring, a traceback
-- of it raised). Secrets, surrounding text and cut offsets come from a seeded
-- PRNG; the seed is in every failure message (PLANAPI_SEED=<n> replays it).
local core = require "planapi.core"
local planapi = require "planapi"
local sandbox = require "sandbox"

local WINDOW = 6

local SEED = tonumber(os.getenv "PLANAPI_SEED") or os.time()

-- A PRNG of our own (the same sequence under Lua 5.4 and LuaJIT: every
-- product stays below 2^53, so doubles compute it exactly).
local state = SEED % 4294967296
local function random(lo, hi)
  state = (state * 69069 + 1) % 4294967296
  return lo + math.floor(state / 4294967296 * (hi - lo + 1))
end

-- Printable ASCII without space (header values are trimmed) and without
-- '*' (the mask itself would complete a window of a secret holding "***").
local function random_secret(len)
  local out = {}
  for i = 1, len do
    local c
    repeat c = random(33, 126) until c ~= 42
    out[i] = string.char(c)
  end
  return table.concat(out)
end

-- Filler a server might put around an echo: words and punctuation, never a
-- window of a random secret (by chance: 1 in 94^6 per window).
local WORDS = { "error", "the", "request", "was", "refused", ":", "-", "upstream", "<b>", "</b>", "\n", "id=7" }
local function random_text(len)
  local out, n = {}, 0
  while n < len do
    local w = WORDS[random(1, #WORDS)] .. " "
    out[#out + 1] = w
    n = n + #w
  end
  return table.concat(out):sub(1, len)
end

-- ------------------------------------------------------------------ the oracle

-- The forms a secret can be echoed in, encoded here independently of src/.
local function forms(secret)
  local json = secret:gsub('[\\"/]', function(c) return "\\" .. c end)
  local url = secret:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)
  local xml = secret:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&apos;" })
  return { secret, json, url, xml }
end

-- The first window of any form of any secret found in text, or nil.
local function leak(text, secrets)
  for _, secret in ipairs(secrets) do
    for _, form in ipairs(forms(secret)) do
      for i = 1, #form - WINDOW + 1 do
        local w = form:sub(i, i + WINDOW - 1)
        if text:find(w, 1, true) then return w end
      end
    end
  end
  return nil
end

-- Everything a user could see of an error.
local function exposed(err)
  local parts, seen = { tostring(err) }, {}
  local function walk(t, depth)
    if seen[t] or depth > 4 then return end
    seen[t] = true
    for k, v in pairs(t) do
      if type(k) == "string" then parts[#parts + 1] = k end
      if type(v) == "string" then
        parts[#parts + 1] = v
      elseif type(v) == "table" then
        walk(v, depth + 1)
      end
    end
  end
  walk(err, 1)
  local _, tb = xpcall(function() error(err) end, debug.traceback)
  parts[#parts + 1] = tostring(tb)
  return table.concat(parts, "\n")
end

-- text with every window of every form masked: a failure message must not
-- print the secret (nor the rest of it around the window that was found).
local function masked(text, secrets)
  while true do
    local w = leak(text, secrets)
    if not w then return text end
    local at = text:find(w, 1, true)
    text = text:sub(1, at - 1) .. "<FRAGMENT>" .. text:sub(at + WINDOW)
  end
end

local checked = 0
local function assert_no_fragment(err, secrets, what)
  assert.is_true(core.is_error(err), ("%s: not an error: %s (seed %d)"):format(what, tostring(err), SEED))
  local text = exposed(err)
  local w = leak(text, secrets)
  -- the message shows the window masked: a failure must not print the secret
  assert.is_nil(w, ("%s: a %d-character run of a secret survived (seed %d): %s"):format(what, WINDOW, SEED,
    w and masked(text, secrets) or ""))
  checked = checked + 1
end

describe("no fragment of a secret in any output", function()
  before_each(function() sandbox.reset() end)

  describe("core.redact, the routine every client uses", function()
    it("leaves no 6-character run of a secret, for random texts, forms and cut offsets", function()
      for _ = 1, 3000 do
        local secret = random_secret(random(6, 48))
        local form = forms(secret)[random(1, 4)]
        -- the whole form, or the piece of it a server's own cut left
        local i = random(1, #form)
        local j = random(1, 3) == 1 and #form or random(math.min(i + WINDOW - 1, #form), #form)
        local piece = random(1, 2) == 1 and form or form:sub(i, j)
        local text = random_text(random(0, 120)) .. piece .. random_text(random(0, 120))
        local out = core.redact(text, { secret }, random(0, #text + 5))
        assert.is_nil(leak(out, { secret }), ("seed %d: %s"):format(SEED, masked(out, { secret })))
      end
    end)

    it("masks a secret a cut falls into, and the start or end of one at a text's edge", function()
      for _ = 1, 200 do
        local secret = random_secret(random(8, 40))
        local before = random_text(random(1, 100))
        for k = 1, #secret - 1 do
          -- our cut falls k characters into the secret: none of it is shown
          local out = core.redact(before .. secret .. " tail", { secret }, #before + k)
          assert.equal("***...", out:sub(-6), ("seed %d"):format(SEED))
          if k >= 4 then
            -- a server's cut left its first (last) k characters at the end (start)
            local seed = ("seed %d"):format(SEED)
            assert.equal("***", core.redact(before .. secret:sub(1, k), { secret }):sub(-3), seed)
            assert.equal("*** and more", core.redact(secret:sub(-k) .. " and more", { secret }), seed)
          end
        end
      end
    end)

    it("keeps ordinary text: short strings are no secrets, and nothing else is masked", function()
      assert.equal("a key abc here", core.redact("a key abc here", { "abc" }))
      -- an XML error code that happens to start (end) a session id is a code, not a remnant
      assert.equal("0005", core.redact("0005", { "0005a3f9c0b1d2e3" }))
      assert.equal("0005", core.redact("0005", { "a3f9c0b1d2e30005" }))
      assert.equal("a key *** here", core.redact("a key abcd here", { "abcd" }))
      local secret = random_secret(32)
      local text = random_text(300)
      assert.equal(text, core.redact(text, { secret }))
      assert.equal(text:sub(1, 100) .. "...", core.redact(text, { secret }, 100))
    end)
  end)

  -- Cuts at n bytes of a text whose secret starts at offset off: pads that put
  -- the cut at every position in and around the encoded secret.
  local function pads(cut, off, len)
    local out = {}
    for p = cut - off - len - 3, cut - off + 3 do
      if p >= 0 then out[#out + 1] = p end
    end
    out[#out + 1] = random(0, 3000) -- and one anywhere
    return out
  end

  local ESCAPED = {
    none = function(s) return s end,
    json = function(s) return (s:gsub('[\\"]', "\\%0")) end,
    url = function(s) return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end)) end,
    xml = function(s)
      return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
        ["'"] = "&apos;" }))
    end,
  }

  -- Echo faults for a client whose credential is in header `name` as
  -- `scheme .. secret`, with the cuts the client makes (bytes from the body's
  -- start), each swept across the secret.
  local function sweep_echo(c, read, name, scheme, secrets, cuts, escapes, what)
    for _, fmt in ipairs { "html", "text" } do
      for _, escape in ipairs(escapes) do
        local enc = ESCAPED[escape]
        local head = enc(name .. ": " .. scheme)
        local off = #head + (fmt == "html" and #"<pre>" or 0)
        for _, cut in ipairs(cuts) do
          for _, pad in ipairs(pads(cut, off, #enc(secrets[1]))) do
            sandbox.fault { mode = "echo", format = fmt, escape = escape, pad = pad, first = name }
            local r, err = read(c)
            assert.is_nil(r)
            assert_no_fragment(err, secrets, ("%s echo %s/%s pad %d"):format(what, fmt, escape, pad))
          end
        end
      end
    end
    -- and the documents an API would answer: the echo inside its error message
    for _, fmt in ipairs { "json", "xml" } do
      for _ = 1, 5 do
        sandbox.fault { mode = "echo", format = fmt, pad = random(0, 2500), first = name }
        local _, err = read(c)
        assert_no_fragment(err, secrets, what .. " echo " .. fmt)
      end
    end
  end

  -- A server that cut or wrapped the secret itself: its error message holds a
  -- piece of it (at least 6 characters, or its start at the message's end, or
  -- its end at the message's start), among random text.
  local function piece_faults(c, read, secrets, what)
    for _ = 1, 40 do
      local s = secrets[random(1, #secrets)]
      local form = forms(s)[random(1, 4)]
      local i = random(1, #form - WINDOW + 1)
      local piece = form:sub(i, random(i + WINDOW - 1, #form))
      local text
      local where = random(1, 3)
      if where == 1 then
        text = random_text(random(0, 300)) .. piece .. random_text(random(0, 300))
      elseif where == 2 then
        text = random_text(random(1, 300)) .. form:sub(1, random(WINDOW, #form))
      else
        text = form:sub(-random(WINDOW, #form)) .. random_text(random(1, 300))
      end
      local mode = random(1, 2) == 1 and "status" or "code"
      sandbox.fault { mode = mode, status = mode == "status" and random(400, 599) or nil, error = text }
      local _, err = read(c)
      assert_no_fragment(err, secrets, ("%s %s fault"):format(what, mode))
    end
  end

  -- (no test name holds a scheme and a space, "Bearer" + " t...": the suite's
  -- placeholder credentials would be found in busted's output)
  it("Planfix REST: the token, echoed by a proxy page cut to a snippet, or by the API", function()
    local token = random_secret(random(24, 40))
    local rest = sandbox.rest { token = token, retry = { attempts = 1 } }
    local function read(c) return c:call("get-task-by-id", { id = 1 }) end
    local before = checked
    sweep_echo(rest, read, "Authorization", "Bearer ", { token }, { 80 }, { "none", "json", "url", "xml" }, "rest")
    piece_faults(rest, read, { token }, "rest")
    assert.is_true(checked - before > 200, "errors checked: " .. (checked - before))
    rest:close()
  end)

  it("Planado: the key in either header, echoed into the message (cut at 200) and err.body (cut at 2000)",
    function()
      for _, header in ipairs { "Authorization", "X-Planado-API-Key" } do
        local key = random_secret(random(24, 40))
        local pd = sandbox.planado { api_key = key, auth_header = header, retry = { attempts = 1 } }
        local function read(c) return c.jobs:get "job-ext-1" end
        sweep_echo(pd, read, header, header == "Authorization" and "Bearer " or "", { key }, { 200, 2000 },
          { "none", "json" }, "planado " .. header)
        piece_faults(pd, read, { key }, "planado")
        pd:close()
      end
    end)

  it("Planfix XML: API key, token and their base64, the private key; echoed or cut by the server",
    function()
      local api_key, token, private_key = random_secret(32), random_secret(32), random_secret(40)
      local basic = core.base64(api_key .. ":" .. token)
      local secrets = { api_key, token, basic, private_key }
      local xml = sandbox.xml { api_key = api_key, token = token, private_key = private_key,
        retry = { attempts = 1 } }
      local function read(c) return c.task:get { id = 1 } end
      for _, fmt in ipairs { "xml", "html", "text", "json" } do
        for _, escape in ipairs { "none", "json", "url", "xml" } do
          sandbox.fault { mode = "echo", format = fmt, escape = escape, pad = random(0, 500),
            first = "Authorization" }
          local _, err = read(xml)
          assert_no_fragment(err, secrets, "xml echo " .. fmt .. "/" .. escape)
        end
      end
      piece_faults(xml, read, secrets, "xml")
      xml:close()
    end)

  it("Planfix XML: the session id of a login, echoed with the request body or cut by the server", function()
    local xml = sandbox.xml { login = true, retry = { attempts = 1 } }
    local function read(c) return c.task:get { id = 1 } end
    assert(read(xml))
    local sid = sandbox.control("GET", "xml/sessions").sessions[1].sid
    assert.equal(32, #sid)
    for _, fmt in ipairs { "xml", "json", "text" } do
      sandbox.fault { mode = "echo", format = fmt, pad = random(0, 500) }
      local _, err = read(xml)
      assert_no_fragment(err, { sid }, "xml sid echo " .. fmt)
    end
    piece_faults(xml, read, { sid }, "xml sid")
    xml:close()
  end)

  it("the webhook receiver: its secret, or pieces of it, in the header or the body", function()
    local secret = random_secret(32)
    local hook = planapi.planado_webhook { secret = secret }
    local before = checked
    for _ = 1, 200 do
      local i = random(1, #secret - WINDOW + 1)
      local piece = secret:sub(i, random(i + WINDOW - 1, #secret))
      local given = ({ piece, secret .. "x", piece .. random_text(5), secret })[random(1, 4)]
      local body = ({ "{" .. piece, '{"event_uuid":"' .. secret .. '"}', random_text(50) .. piece,
        '{"x":1}' })[random(1, 4)]
      local event, err = hook:handle({ ["X-Planado-Secret"] = given }, body)
      if event == nil then assert_no_fragment(err, { secret }, "webhook") end
    end
    assert.is_true(checked - before > 100, "errors checked: " .. (checked - before))
  end)

end)
