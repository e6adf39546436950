-- The XML client's custom data by field name and handbook records by name (issue 20), against the
-- sandbox, whose XML and REST endpoints share one store: what the XML client writes by name is
-- read back through the REST API (an independent path through the emulator) and the other way
-- round. The definitions come from a REST client (the XML API lists no custom fields) or a
-- loader; requests are counted in the sandbox's XML log.
local cache = require "planapi.cache"
local sandbox = require "sandbox"
local expect = require "expect"

-- Clients whose definitions are their own (a cache namespace per test).
local function clients()
  local c = cache.new { namespace = "spec16/" .. tostring({}) }
  local rest = sandbox.rest { definitions = { cache = c } }
  return sandbox.xml { definitions = { rest = rest, cache = c } }, rest
end

local function xml_calls(method)
  local n = 0
  for _, e in ipairs(sandbox.xml_log()) do
    if type(e.xml) == "table" and e.xml["@method"] == method then n = n + 1 end
  end
  return n
end

local config_error_of = expect.config_error_of

-- Values by name, as a script gives them, and as the REST API's read of the same task decodes them.
local VALUES = {
  ["Order number"] = "ORD-7", Region = "South", Deadline = "2026-12-31", ["Number (type 1)"] = 12.5,
  ["Checkbox (type 7)"] = true, ["Date and time (type 5)"] = "2026-01-02 10:30",
  ["Set of values (type 20)"] = { "Alpha", "Gamma" }, ["Employee (type 11)"] = "user:2",
}
local AS_XML_READS = {
  ["Order number"] = "ORD-7", Region = "South", Deadline = "31-12-2026", ["Number (type 1)"] = 12.5,
  ["Checkbox (type 7)"] = true, ["Date and time (type 5)"] = "02-01-2026 10:30",
  ["Set of values (type 20)"] = { "Alpha", "Gamma" }, ["Employee (type 11)"] = "2",
}

describe("planfix_xml custom data and handbook records by name", function()
  before_each(function() sandbox.reset() end)

  it("writes by name in one updateCustomData, reads back, and REST reads the same values", function()
    local xml, rest = clients()
    local id = assert(rest.tasks:create { name = "XML by name", template = { id = 100 } })
    local result = assert(xml.task:set_fields(id, VALUES))
    assert.is_true(result.verified)
    assert.equal(1, xml_calls "task.updateCustomData")
    local t = assert(xml.task:get { id = id })
    assert.same(AS_XML_READS, t.fields)
    local names = {}
    for name in pairs(VALUES) do names[#names + 1] = name end
    local r = assert(rest.tasks:get(id, { fields = names }))
    assert.equal("ORD-7", r.fields["Order number"])
    assert.equal("South", r.fields.Region)
    assert.equal(12.5, r.fields["Number (type 1)"])
    assert.is_true(r.fields["Checkbox (type 7)"])
    assert.same({ "Alpha", "Gamma" }, r.fields["Set of values (type 20)"])
    assert.equal("user:2", r.fields["Employee (type 11)"].id)
  end)

  it("reads what REST wrote, on contacts and projects too", function()
    local xml, rest = clients()
    assert(rest.contacts:set_fields(11, { ["Short text (type 0)"] = "from REST" }))
    assert.equal("from REST", assert(xml.contact:get { id = 11 }).fields["Short text (type 0)"])
    local pid = assert(rest.projects:create { name = "P", template = { id = 1 } })
    assert(xml.project:set_fields(pid, { ["Number (type 1)"] = 3 }))
    assert.equal(3, assert(rest.projects:get(pid, { fields = { "Number (type 1)" } })).fields["Number (type 1)"])
    assert(xml.contact:set_fields(11, { ["Checkbox (type 7)"] = false }))
    assert.is_false(assert(rest.contacts:get(11, { fields = { "Checkbox (type 7)" } })).fields["Checkbox (type 7)"])
  end)

  it("a field not on the task's template is an api error naming it (Planfix answered success)", function()
    local xml, rest = clients()
    local id = assert(rest.tasks:create { name = "Monthly", template = { id = 101 } }) -- no Region
    local r, err = xml.task:set_fields(id, { Region = "North", ["Order number"] = "A-1" })
    assert.is_nil(r)
    assert.equal("api", err.kind)
    assert.matches("'Region' %(wrote \"North\", read nothing", tostring(err))
    assert.is_nil(tostring(err):find("Order number", 1, true))
    assert.equal(1, xml_calls "task.updateCustomData")
  end)

  it("a list value none of the options, sent with the checks off, is an api error; the sandbox stored it", function()
    local xml, rest = clients()
    local id = assert(rest.tasks:create { name = "Unchecked", template = { id = 100 } })
    local region = rest.fields:get("task", "Region").id
    local defs = sandbox.operations "GET /customfield/task"
    local r, err = xml.task:set_fields(id, { Region = "Mars", ["Set of values (type 20)"] = { "Alpha", "Zeta" } },
      { check = false })
    assert.is_nil(r)
    assert.equal("api", err.kind)
    local text = tostring(err)
    assert.matches("'Region' holds \"Mars\", none of its options %(North, South, East, West%): "
      .. "Planfix stores a list value unchecked", text)
    assert.matches("'Set of values %(type 20%)' holds \"Zeta\", none of its options %(Alpha, Beta, Gamma%)", text)
    assert.not_matches("\n", text)
    assert.equal(1, xml_calls "task.updateCustomData")
    -- the definitions were read again once before the values were blamed
    assert.equal(defs + 1, sandbox.operations "GET /customfield/task")
    local cf = sandbox.control("GET", "store/tasks/" .. id).record._cf
    assert.equal("Mars", cf[tostring(region)])
    -- a value among the options passes the same unchecked write
    assert.is_true(assert(xml.task:set_fields(id, { Region = "East" }, { check = false })).verified)
  end)

  it("refuses before sending: unknown name, a list value not among the options, read-only, no definitions",
    function()
      local xml = clients()
      local err = config_error_of(xml.task.set_fields, xml.task, 1, { ["Order numbr"] = "x" })
      assert.matches("unknown custom field 'Order numbr' for task %(closest: Order number", tostring(err))
      err = config_error_of(xml.task.set_fields, xml.task, 1, { Region = "Mars" })
      assert.matches("has no option \"Mars\"", tostring(err))
      err = config_error_of(xml.task.set_fields, xml.task, 1, { ["Totals field (type 29)"] = 1 })
      assert.matches("read%-only", tostring(err))
      local bare = sandbox.xml()
      err = config_error_of(bare.task.set_fields, bare.task, 1, { Region = "North" })
      assert.matches("option 'definitions'", tostring(err))
      assert.is_nil(assert(bare.task:get { id = 1 }).fields) -- no definitions, no decoding
      assert.equal(0, xml_calls "task.updateCustomData")
    end)

  it("multi-value texts round trip: quoted items with commas and quotes, numbers bare (500 random lists)",
    function()
      local custom = require "planapi.planfix_xml.custom_data"
      local set, ids = { type = 20, name = "Set" }, { type = 17, name = "Tasks" }
      local ALPHABET = { "a", "b", " ", ",", '"', "\\", "[", "]", "1", "\208\175" }
      local seed = os.time()
      math.randomseed(seed)
      for _ = 1, 500 do
        local strings, numbers = {}, {}
        for i = 1, math.random(1, 5) do
          local chars = {}
          for k = 1, math.random(1, 8) do chars[k] = ALPHABET[math.random(#ALPHABET)] end
          strings[i] = table.concat(chars)
          numbers[i] = math.random(1, 10 ^ 6)
        end
        assert.same(strings, custom.decode(set, custom.text(set, strings)), "seed " .. seed)
        local wire = {}
        for i, n in ipairs(numbers) do wire[i] = { id = n } end
        assert.same(numbers, custom.decode(ids, custom.text(ids, wire)), "seed " .. seed)
      end
    end)

  it("takes the definitions from a loader, read once for many reads", function()
    local calls = 0
    local xml = sandbox.xml { definitions = { cache = cache.new { namespace = "spec16/" .. tostring({}) },
      load_fields = function(entity)
        calls = calls + 1
        assert.equal("task", entity)
        return { { id = 106, name = "Order number", type = 0 }, { id = 107, name = "Region", type = 8,
          enumValues = { "North", "South", "East", "West" } } }
      end } }
    assert(xml.task:set_fields(1, { Region = "West" }))
    for _ = 1, 3 do assert.equal("West", assert(xml.task:get { id = 1 }).fields.Region) end
    assert.equal(1, calls)
    local ok, err = pcall(sandbox.xml, { definitions = { cache = "memory" } })
    assert.is_false(ok)
    assert.matches("takes a REST client", tostring(err))
  end)

  it("finds a handbook record past the first page by a field's value, then from the cache", function()
    local xml = clients()
    local r = assert(xml.handbook:find("Lead sources", { Name = "Website" }))
    assert.equal(137, r.key)
    assert.same({ Name = "Website", Channel = "Offline" }, r.fields)
    assert.equal(2, xml_calls "handbook.getRecords")
    assert.equal(150, assert(xml.handbook:find("lead sources", "Exhibition")).key)
    assert.equal(75, #assert(xml.handbook:find_all("Lead sources", { Channel = "Online" })))
    assert.equal(2, xml_calls "handbook.getRecords")
    assert.equal(1, xml_calls "handbook.getStructure")
    assert.equal(1, xml_calls "handbook.getList")
    local err = config_error_of(xml.handbook.find, xml.handbook, "Lead sources", { Chanel = "Online" })
    assert.matches("unknown field 'Chanel' for directory 'Lead sources' %(closest: Channel", tostring(err))
  end)

  it("create_missing adds the record, reads it back, and the next find sees it; REST sees it too", function()
    local xml, rest = clients()
    local nf, nerr = xml.handbook:find(3, { Name = "Trade fair" })
    assert.is_nil(nf)
    assert.is_true(nerr.not_found)
    local r = assert(xml.handbook:find(3, { Name = "Trade fair", Channel = "Online" }, { create_missing = true }))
    assert.is_true(r.created)
    assert.equal(1, xml_calls "handbook.addRecord")
    local again = assert(xml.handbook:find(3, { Name = "Trade fair" }, { create_missing = true }))
    assert.equal(r.key, again.key)
    assert.equal(1, xml_calls "handbook.addRecord")
    local e = assert(rest.directories:find("Lead sources", { Name = "Trade fair" }))
    assert.equal(r.key, e.key)
    assert.equal("Online", e.fields.Channel)
    -- works without the definitions option too (the handbooks' own fields)
    local bare = sandbox.xml()
    assert.equal(r.key, assert(bare.handbook:find("Lead sources", "Trade fair")).key)
  end)
end)
