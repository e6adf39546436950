-- The retry policy and the page iterator, with injected randomness and a
-- fake page source: no network, no sleeping.
local core = require "planapi.core"
local Policy = require "planapi.policy"
local Pager = require "planapi.pager"

local function err(fields)
  fields.message = fields.message or "m"
  return core.error(fields)
end

describe("retry policy", function()
  local function fixed(x) return function() return x end end

  it("backs off exponentially with full jitter, up to the cap", function()
    local p = Policy.new { attempts = 10, base = 0.5, cap = 4, random = fixed(1) }
    local e = err { kind = "http", retryable = true }
    assert.equal(0.5, p:delay(e, 1, true))
    assert.equal(1, p:delay(e, 2, true))
    assert.equal(2, p:delay(e, 3, true))
    assert.equal(4, p:delay(e, 4, true))
    assert.equal(4, p:delay(e, 8, true))
    local half = Policy.new { attempts = 10, base = 0.5, cap = 4, random = fixed(0.5) }
    assert.equal(0.5, half:delay(e, 2, true)) -- jitter scales the whole window
  end)

  it("honours Retry-After, and gives up when it is longer than max_wait", function()
    local p = Policy.new { max_wait = 60, random = fixed(1) }
    assert.equal(7, p:delay(err { kind = "rate_limit", retryable = true, retry_after = 7 }, 1, true))
    assert.is_nil(p:delay(err { kind = "rate_limit", retryable = true, retry_after = 600 }, 1, true))
  end)

  it("stops after the last attempt and never retries what is not retryable", function()
    local p = Policy.new { attempts = 3, random = fixed(0) }
    local e = err { kind = "timeout", retryable = true }
    assert.is_not_nil(p:delay(e, 2, true))
    assert.is_nil(p:delay(e, 3, true))
    assert.is_nil(p:delay(err { kind = "auth", retryable = false }, 1, true))
  end)

  it("repeats a non-idempotent request only when the server certainly did nothing", function()
    local p = Policy.new { random = fixed(0) }
    assert.is_nil(p:delay(err { kind = "timeout", retryable = true }, 1, false))
    assert.is_nil(p:delay(err { kind = "http", status = 503, retryable = true }, 1, false))
    assert.is_not_nil(p:delay(err { kind = "transport", retryable = true, request_sent = false }, 1, false))
    assert.is_not_nil(p:delay(err { kind = "rate_limit", retryable = true }, 1, false))
    assert.is_not_nil(p:delay(err { kind = "api", code = 3, retryable = true, rejected = true }, 1, false))
  end)

  it("lets on_retry watch and veto", function()
    local seen = {}
    local p = Policy.new { random = fixed(1), on_retry = function(e, attempt, wait)
      seen[#seen + 1] = { e.kind, attempt, wait }
      return attempt < 2
    end }
    local e = err { kind = "http", retryable = true }
    assert.equal(0.5, p:delay(e, 1, true))
    assert.is_nil(p:delay(e, 2, true))
    assert.same({ { "http", 1, 0.5 }, { "http", 2, 1 } }, seen)
  end)

  it("checks its options", function()
    for _, bad in ipairs { { attempts = 0 }, { base = -1 }, { cap = "x" }, { attemps = 3 }, { random = 1 } } do
      local ok, e = pcall(Policy.new, bad)
      assert.is_false(ok)
      assert.equal("config", e.kind)
    end
  end)
end)

-- A fake list of n items served in pages of `size`, like offset paging.
local function source(n, size, fail_at)
  local calls = 0
  local function fetch(cursor)
    calls = calls + 1
    if fail_at and calls == fail_at then
      fail_at = nil
      return nil, err { kind = "timeout", retryable = true }
    end
    local offset = cursor and cursor.offset or 0
    local items = {}
    for i = offset + 1, math.min(n, offset + size) do items[#items + 1] = { id = i } end
    return items, (#items >= size) and { offset = offset + size } or nil
  end
  return fetch, function() return calls end
end

local function ids(iter)
  local out = {}
  for item in iter do out[#out + 1] = item.id end
  return out
end

describe("pager", function()
  it("hands out every item once across pages and stops on a short page", function()
    for _, n in ipairs { 0, 1, 9, 10, 11, 25 } do
      local fetch, calls = source(n, 10)
      local got = ids(Pager.new(fetch):each())
      assert.equal(n, #got)
      for i = 1, n do assert.equal(i, got[i]) end
      assert.equal(math.floor(n / 10) + 1, calls())
    end
  end)

  it("yields whole pages", function()
    local fetch = source(25, 10)
    local sizes = {}
    for page in Pager.new(fetch):pages() do sizes[#sizes + 1] = #page end
    assert.same({ 10, 10, 5 }, sizes)
  end)

  it("stops cleanly on break and resumes from the saved position without loss or repeats", function()
    local fetch = source(25, 10)
    local pager = Pager.new(fetch)
    local first = {}
    for item in pager:each() do
      first[#first + 1] = item.id
      if item.id == 13 then break end
    end
    local saved = pager:position()
    assert.same({ offset = 10, skip = 3 }, saved)
    local rest = ids(Pager.new(fetch, { cursor = saved }):each())
    assert.equal(14, rest[1])
    assert.equal(25, rest[#rest])
    assert.equal(25, #first + #rest)
  end)

  it("resumes inside the first page at the first item not handed out", function()
    local fetch = source(25, 10)
    local pager = Pager.new(fetch)
    for item in pager:each() do
      if item.id == 4 then break end
    end
    assert.same({ skip = 4 }, pager:position())
    local rest = ids(Pager.new(fetch, { cursor = pager:position() }):each())
    assert.equal(5, rest[1])
    assert.equal(21, #rest)
  end)

  it("reports nil before anything is read and false when all was read", function()
    local fetch = source(5, 10)
    local pager = Pager.new(fetch)
    assert.is_nil(pager:position())
    ids(pager:each())
    assert.is_false(pager:position())
  end)

  it("raises the error from a for loop, and next_page returns it and can be retried", function()
    local fetch = source(25, 10, 2)
    local pager = Pager.new(fetch)
    local ok, e = pcall(function() ids(pager:each()) end)
    assert.is_false(ok)
    assert.equal("timeout", e.kind)

    fetch = source(25, 10, 2)
    pager = Pager.new(fetch)
    assert.equal(10, #pager:next_page())
    local items, e2 = pager:next_page()
    assert.is_nil(items)
    assert.equal("timeout", e2.kind)
    assert.equal(11, pager:next_page()[1].id) -- the failed page again
  end)

  it("caps pages and items, and reports that a cap cut the list", function()
    local fetch, calls = source(1000, 10)
    local capped = Pager.new(fetch, { max_pages = 2 })
    assert.equal(20, #ids(capped:each()))
    assert.equal(2, calls())
    assert.is_true(capped.truncated)
    local by_items = Pager.new(source(1000, 10), { max_items = 15 })
    assert.equal(15, #ids(by_items:each()))
    assert.is_true(by_items.truncated)
    local whole = Pager.new(source(15, 10), { max_items = 15, max_pages = 5 })
    assert.equal(15, #ids(whole:each()))
    assert.is_nil(whole.truncated) -- the cap was not what stopped it
  end)

  it("drops repeated ids when asked", function()
    local served = 0
    local function shifting(cursor) -- an item inserted at the front shifts the next page by one
      served = served + 1
      local offset = cursor and cursor.offset or 0
      local items = {}
      for i = offset + 1 - (served - 1), math.min(30, offset + 10 - (served - 1)) do items[#items + 1] = { id = i } end
      return items, (#items >= 10) and { offset = offset + 10 } or nil
    end
    local got = ids(Pager.new(shifting, { dedupe = true }):each())
    local seen = {}
    for _, id in ipairs(got) do
      assert.is_nil(seen[id], "repeated id " .. id)
      seen[id] = true
    end
  end)
end)
