-- Planfix field definitions by name or id (lua/planapi/planfix_fields/definitions.lua), issue 20:
-- loaded through injected loaders (counted), kept in a cache (memory by default, any object
-- with the cache interface otherwise), names resolved exactly then ignoring case, ambiguous and
-- unknown names refused with the candidates or the closest names listed.
-- (The checks before a REST write, against the sandbox's request log, are in spec/36.)
local cjson = require("cjson").new()
local core = require "planapi.core"
local cache = require "planapi.cache"
local Definitions = require "planapi.planfix_fields.definitions"
local expect = require "expect"

-- The OpenAPI file's CustomField shape, type given as a number or as the spec's enum text.
local FIELDS = {
  { id = 101, name = "Order number", type = 0, objectType = 0 },
  { id = 102, name = "Region", type = "8 // List", objectType = 0, enumValues = { "North", "South" } },
  { id = 103, name = "Deadline", type = 3, objectType = 0 },
  { id = 104, name = "Source", type = 9, objectType = 0, directoryId = 12 },
  { id = 105, name = "Amount", type = 1 },
  { id = 106, name = "amount", type = 1 },
  { id = 107, name = "Totals", type = 29 },
  { id = 108, name = "Регион доставки", type = 0 },
}

local function counting_loader(list)
  local calls = { n = 0 }
  return function(entity)
    calls.n = calls.n + 1
    calls.entity = entity
    if calls.fail then return nil, core.error { kind = "http", message = "loader failed" } end
    return list
  end, calls
end

describe("planfix_fields.definitions", function()
  local load, calls, defs
  before_each(function()
    load, calls = counting_loader(FIELDS)
    -- a namespace per test: the memory scope is shared by the whole process
    defs = Definitions.new { load_fields = load, namespace = "acme.planfix.com/" .. tostring({}) }
  end)

  it("normalizes the API's definitions (type from the spec's enum text, options, directory)", function()
    local region = defs:field("task", "Region")
    assert.same({ id = 102, name = "Region", type = 8, type_name = "List", entity = "task",
      options = { "North", "South" }, readonly = false, raw = FIELDS[2] }, region)
    assert.equal(12, defs:field("task", "Source").directory_id)
    assert.is_true(defs:field("task", "Totals").readonly)
    assert.equal(#FIELDS, #defs:fields("task"))
  end)

  it("finds a field by exact name, then ignoring case (Cyrillic too), or by id", function()
    assert.equal(101, defs:field("task", "order NUMBER").id)
    assert.equal(105, defs:field("task", "Amount").id) -- exact wins over its case-folded twin
    assert.equal(106, defs:field("task", "amount").id)
    assert.equal(108, defs:field("task", "РЕГИОН ДОСТАВКИ").id)
    assert.equal(103, defs:field("task", 103).id)
    assert.equal(103, defs:field("task", "103").id)
  end)

  it("refuses an ambiguous name, listing the candidates with their ids", function()
    local err = expect.raises_config(function() defs:field("task", "AMOUNT") end, "ambiguous")
    assert.matches("'Amount' %(id 105%)", err.message)
    assert.matches("'amount' %(id 106%)", err.message)
  end)

  it("refuses an unknown name or id, naming the closest names", function()
    local err = expect.raises_config(function() defs:field("task", "Regoin") end, "unknown custom field 'Regoin'")
    assert.matches("closest: Region", err.message)
    expect.raises_config(function() defs:field("task", 999) end, "no custom field with id 999")
    local one_line = expect.raises_config(function() defs:field("task", "Re\ngion") end, "unknown")
    assert.is_nil(tostring(one_line):find "\n")
    expect.raises_config(function() defs:field("invoice", "Region") end, "task, contact, project or user")
  end)

  it("loads once per entity and TTL, again after invalidate or expiry", function()
    local now = 1000
    local c = cache.new { clock = function() return now end, namespace = tostring({}) }
    defs = Definitions.new { load_fields = load, cache = c, ttl = 60 }
    for _ = 1, 5 do defs:field("task", "Region") end
    assert.equal(1, calls.n)
    assert.equal("task", calls.entity)
    defs:fields("contact")
    assert.equal(2, calls.n)
    defs:invalidate("task")
    defs:field("task", "Region")
    defs:fields("contact")
    assert.equal(3, calls.n)
    now = now + 61
    defs:field("task", "Region")
    assert.equal(4, calls.n)
    defs:invalidate()
    defs:fields("task")
    defs:fields("contact")
    assert.equal(6, calls.n)
  end)

  it("returns a loader's failure and does not keep it", function()
    calls.fail = true
    local def, err = defs:field("task", "Region")
    assert.is_nil(def)
    assert.equal("loader failed", err.message)
    calls.fail = false
    assert.equal(102, defs:field("task", "Region").id)
    assert.equal(2, calls.n)
  end)

  it("keeps only JSON in the cache under keys of the namespace (a file or Redis cache works alike)", function()
    local store, keys = {}, {}
    -- A cache that, like a file or Redis, gives back a decoded copy of what was stored.
    local json_cache = {
      fetch = function(_, key, loader)
        keys[#keys + 1] = key
        if store[key] == nil then
          local v, err = loader()
          if v == nil then return nil, err end
          store[key] = core.json_encode(v)
        end
        return cjson.decode(store[key])
      end,
      invalidate = function(_, key) store[key] = nil end,
      invalidate_prefix = function() store = {} end,
    }
    local templates = {
      { id = 7, name = "Delivery", customFieldData = { { field = { id = 101 } }, { field = { id = 102 } } } },
      { id = 8, name = "Pickup", customFieldData = { { field = { id = 101 }, value = "x" } } } }
    defs = Definitions.new { load_fields = load, load_templates = function() return templates end,
      cache = json_cache, namespace = "acme.planfix.com" }
    assert.equal(102, defs:field("task", "Region").id)
    assert.equal(102, defs:field("task", "region").id)
    local pickup = defs:template("task", "pickup")
    assert.same({ id = 8, name = "Pickup", entity = "task", field_ids = { [101] = true } }, pickup)
    assert.same({ [101] = true, [102] = true }, defs:template("task", 7).field_ids)
    assert.same({ "acme.planfix.com/fields/task", "acme.planfix.com/fields/task",
      "acme.planfix.com/templates/task", "acme.planfix.com/templates/task" }, keys)
    assert.equal(1, calls.n)
  end)

  it("refuses a mistyped option or a missing loader at construction", function()
    expect.raises_config(function() Definitions.new { load_field = load } end, "unknown definitions option")
    expect.raises_config(function() Definitions.new {} end, "load_fields")
    expect.raises_config(function() defs:templates("task") end, "no templates loader")
  end)
end)
