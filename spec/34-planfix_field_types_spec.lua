-- Planfix custom-field values by type (lua/planapi/planfix_fields/types.lua), issue 20.
-- The oracle is the official OpenAPI file: its CustomField.type enum names the types, its
-- "example update custom field: type ..." request bodies are what encode must produce, and its
-- "example response when requesting fields=N (... type ...)" answers are what decode reads;
-- then every writable type written through the REST client into the sandbox (its own
-- emulation of Planfix's value handling), read back and decoded. Then properties over many
-- random values (encode then decode is the identity where the type keeps the value), and each
-- refusal (a config error, before anything could be sent).
local cjson = require("cjson").new()
local core = require "planapi.core"
local types = require "planapi.planfix_fields.types"
local openapi = require "openapi"
local expect = require "expect"
local sandbox = require "sandbox"

local doc = openapi.load()

-- The spec's named examples under a path's operation, by name.
local function examples(path, method, where)
  local op = doc.paths[path][method]
  local node = where == "request" and op.requestBody or op.responses["200"]
  return node.content["application/json"].examples
end

local function def_of(t, extra)
  local d = { id = 900 + t, name = "Field " .. t, type = t }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end

-- A JSON round trip through lua-cjson (not our encoder): what would go on the wire.
local function wire(v)
  return cjson.decode(core.json_encode(v))
end

describe("planfix_fields.types", function()
  it("names every type of the spec's CustomField.type enum as the spec does", function()
    local enum = doc.components.schemas.CustomField.properties.type.enum
    assert.is_true(#enum >= 26)
    for _, text in ipairs(enum) do
      local n, name = text:match "^(%d+) // (.+)$"
      assert.equal(name, types.name(tonumber(n)))
    end
    assert.equal("Date with time frame", types.name(28))
    assert.equal("Totals field", types.name(29))
    assert.equal("type 18", types.name(18))
  end)

  -- Lua input (what a script writes) for each of the spec's documented update examples.
  local INPUTS = {
    ["type Short text"] = { 0, "Test value" },
    ["type Number"] = { 1, 99 },
    ["type Date"] = { 3, "2021-11-11" },
    ["type Time"] = { 4, "17:55" },
    ["from object: type Date and time"] = { 5, "2021-12-12 12:15" },
    ["from string: type Date and time"] = { 5, "21-12-2021 12:15:00" },
    ["type Period of time"] = { 6, { from = "01:15", to = "04:40" } },
    ["type Checkbox"] = { 7, true },
    ["type List"] = { 8, "Enum value" },
    ["type Contact by prefixedId"] = { 10, "contact:5" },
    ["type Contact by id"] = { 10, 5 },
    ["type Employee by prefixedId"] = { 11, "user:3" },
    ["type Employee by id"] = { 11, 3 },
    ["type Counterparty by prefixedId"] = { 12, "contact:10" },
    ["type Counterparty by id"] = { 12, 10 },
    ["type Group, employee, or contact"] = { 13, "group:1" },
    ["type List of users"] = { 14, { "user:1", "contact:7", "group:5" } },
    ["type Set of directory values"] = { 15, { 1, 2, 3 } },
    ["type Task"] = { 16, 111 },
    ["type Task set"] = { 17, { 111, 112, 113 } },
    ["type Set of values"] = { 20, { "First element" } },
    ["type Files"] = { 21, { 204308, 205305 } },
    ["type Project"] = { 22, 5 },
    ["type Location"] = { 25, { address = "New York", longitude = 40.71041692830323, latitude = -74.00097407111207 } },
  }

  it("encodes what a script gives into each of the spec's documented update bodies", function()
    local seen = 0
    for name, ex in pairs(examples("/task/{id}", "post", "request")) do
      local suffix = name:match "^example update custom field:? (.+)$"
      local input = suffix and INPUTS[suffix:gsub("^: ", "")]
      if input then
        seen = seen + 1
        local item = ex.value.customFieldData[1]
        local def = def_of(input[1], { options = input[1] == 8 and { "Enum value", "Other" } or nil })
        local sent = wire(assert(types.encode(def, input[2])))
        assert.is_true(types.same(def, sent, item.value), name)
        if not suffix:match "by id" and not suffix:match "from string" then
          assert.same(item.value, sent, name)
        end
      end
    end
    assert.equal(24, seen)
  end)

  -- What decode gives for each of the spec's documented answers.
  local DECODED = {
    [0] = "Test value", [1] = 99, [3] = "2021-11-11", [4] = "17:50", [5] = "2021-12-21 12:15",
    [6] = { from = "01:15", to = "04:40" }, [7] = true, [8] = "Enum value", [9] = "Item value",
    [10] = { id = "contact:5", name = "Ivanov Ivan" }, [11] = { id = "user:3", name = "Petrov Petr" },
    [13] = { id = "user:1", name = "Petrov Petr" },
    [15] = { "Item value one", "Item value two", "Item value three" },
    [16] = { id = 111, name = "My task" }, [20] = { "First element", "Two element", "Three element" },
    [21] = { 204308, 205305 }, [22] = { id = 5, name = "My project" }, [23] = 1.2, [24] = "Formula result",
  }

  it("decodes each of the spec's documented answers into a plain Lua value", function()
    local seen = 0
    for name, ex in pairs(examples("/task/{id}", "get")) do
      local data = ex.value.task and ex.value.task.customFieldData
      local item = data and data[1]
      if item and name:match "custom field ID" then
        local expected = DECODED[item.field.type]
        if expected ~= nil then
          seen = seen + 1
          assert.same(expected, types.decode(item.field, item.value), name)
        end
      end
    end
    assert.equal(19, seen)
    local loc = types.decode({ type = 25 }, { address = "New York", latitude = 1.5, longitude = 2.5 })
    assert.same({ address = "New York", latitude = 1.5, longitude = 2.5 }, loc)
    assert.same({ from = "2021-12-21 21:15", to = "2021-12-22 00:40" }, types.decode({ type = 28 },
      { from = { date = "21-12-2021", time = "21:15" }, to = { date = "22-12-2021", time = "00:40" } }))
  end)

  describe("round trips over random values", function()
    local seed = os.time()
    before_each(function() math.randomseed(seed) end)

    local function random_text(n)
      local out = {}
      for i = 1, n do out[i] = string.char(math.random(32, 126)) end
      return table.concat(out)
    end

    it("line, text, number and checkbox keep the value", function()
      for _ = 1, 300 do
        local s = random_text(math.random(1, 40))
        assert.equal(s, types.decode(def_of(0), wire(types.encode(def_of(0), s))), "seed " .. seed)
        assert.equal(s, types.decode(def_of(2), wire(types.encode(def_of(2), s))))
        local n = math.random(-1e6, 1e6) + math.random(0, 99) / 100
        assert.equal(n, types.decode(def_of(1), wire(types.encode(def_of(1), n))))
        local b = math.random() < 0.5
        assert.equal(b, types.decode(def_of(7), wire(types.encode(def_of(7), b))))
      end
    end)

    it("dates and times from os.time() values come back as the UTC date and time (offset applied)", function()
      for _ = 1, 300 do
        local t = math.random(0, 4102444800) -- 1970 .. 2100
        local offset = math.random(-12, 14) * 3600
        local ctx = { utc_offset = offset }
        assert.equal(os.date("!%Y-%m-%d", t + offset), types.decode(def_of(3), wire(types.encode(def_of(3), t, ctx))))
        assert.equal(os.date("!%Y-%m-%d %H:%M", t + offset),
          types.decode(def_of(5), wire(types.encode(def_of(5), t, ctx))), "seed " .. seed)
        assert.equal(os.date("!%H:%M", t), types.decode(def_of(4), wire(types.encode(def_of(4), t % 86400))))
        -- what decode gives, encode takes back to the same wire value
        local s = os.date("!%Y-%m-%d %H:%M", t)
        assert.equal(s, types.decode(def_of(5), wire(types.encode(def_of(5), s))))
        assert.equal(s:sub(1, 10), types.decode(def_of(3), wire(types.encode(def_of(3), s:sub(1, 10)))))
      end
    end)

    it("periods, lists, references and multi-value fields keep the value", function()
      local options = { "North", "South", "East", "West", "Север" }
      for _ = 1, 200 do
        local a, b = math.random(0, 86399), math.random(0, 86399)
        local p = { from = os.date("!%H:%M", a), to = os.date("!%H:%M", b) }
        assert.same(p, types.decode(def_of(6), wire(types.encode(def_of(6), p))))
        local fp = { from = os.date("!%Y-%m-%d %H:%M", a * 9999), to = os.date("!%Y-%m-%d %H:%M", b * 9999) }
        assert.same(fp, types.decode(def_of(28), wire(types.encode(def_of(28), fp))))
        local o = options[math.random(#options)]
        assert.equal(o, types.decode(def_of(8, { options = options }),
          wire(types.encode(def_of(8, { options = options }), o))))
        local id = math.random(1, 1e7)
        local sent = wire(types.encode(def_of(11), id))
        assert.same({ id = "user:" .. id }, types.decode(def_of(11), sent))
        assert.is_true(types.same(def_of(11), sent, { id = "user:" .. id, name = "Someone" }))
        local set = {}
        for i = 1, math.random(0, 6) do set[i] = options[math.random(#options)] end
        assert.same(set, types.decode(def_of(20), wire(types.encode(def_of(20), set))))
        local tasks = {}
        for i = 1, math.random(1, 5) do tasks[i] = math.random(1, 1e6) end
        local got = types.decode(def_of(17), wire(types.encode(def_of(17), tasks)))
        for i, t in ipairs(tasks) do assert.equal(t, got[i].id) end
      end
    end)
  end)

  it("round trips every writable type through the sandbox in one write", function()
    sandbox.reset()
    local rest = sandbox.rest()
    rest.fields:invalidate()
    local first = {} -- the first task field of each type
    for _, def in ipairs(assert(rest.fields:list "task")) do first[def.type] = first[def.type] or def end
    local task = assert(rest.tasks:create { name = "Every type" }) -- no template: every field applies
    local o8, o20 = first[8].options, first[20].options
    local cases = {
      [0] = { "line", "line" }, [1] = { 12.5, 12.5 }, [2] = { "multi\nline", "multi\nline" },
      [3] = { "2026-12-31", "2026-12-31" }, [4] = { "9:30", "09:30" },
      [5] = { "31-12-2026 09:30:00", "2026-12-31 09:30" },
      [6] = { { from = "09:00", to = "18:00" }, { from = "09:00", to = "18:00" } },
      [7] = { true, true }, [8] = { o8[2], o8[2] }, [9] = { 137, "Website" },
      [10] = { 12, { id = "contact:12" } }, [11] = { 1, { id = "user:1" } },
      [12] = { "contact:11", { id = "contact:11" } }, [13] = { "user:1", { id = "user:1" } },
      [14] = { { "user:1", "contact:12" }, { { id = "user:1" }, { id = "contact:12" } } },
      [15] = { { 137, 1 }, { "Website", "Referral" } }, [16] = { 2, { id = 2 } },
      [17] = { { 2, 3 }, { { id = 2 }, { id = 3 } } },
      [20] = { { o20[1], o20[3] }, { o20[1], o20[3] } }, [21] = { { 1, 2 }, { 1, 2 } }, [22] = { 1, { id = 1 } },
      [25] = { "Berlin", { address = "Berlin" } }, [27] = { "summary", "summary" },
      [28] = { { from = "2026-12-31 09:00", to = "2027-01-01 18:30" },
        { from = "2026-12-31 09:00", to = "2027-01-01 18:30" } },
    }
    local values, ids = {}, {}
    for t, case in pairs(cases) do
      values[first[t].name] = case[1]
      ids[#ids + 1] = first[t].id
    end
    assert.is_true(assert(rest.tasks:set_fields(task, values)).verified)
    local read = assert(rest.tasks:get(task, { fields = ids }))
    for t, case in pairs(cases) do
      local got = read.fields[first[t].id]
      if type(case[2]) == "table" and case[2][1] and type(case[2][1]) == "table" then
        for i, ref in ipairs(case[2]) do assert.equal(ref.id, got[i].id, types.name(t)) end
      elseif type(case[2]) == "table" and case[2].id then
        assert.equal(case[2].id, got.id, types.name(t))
        assert.is_string(got.name) -- the sandbox names what it refers to
      else
        assert.same(case[2], got, types.name(t))
      end
    end
  end)

  it("compares multi-line text read back as HTML by its words", function()
    local def = def_of(2)
    assert.is_true(types.same(def, "first line\nsecond & last", "<p>first line<br>second &amp; last</p>"))
    assert.is_true(types.same(def, "test", "<p>test<br></p>")) -- the spec's own directory example
    assert.is_false(types.same(def, "first line", "<p>first</p>"))
    assert.is_false(types.same(def_of(0), "a  b", "a b")) -- a line is compared exactly
    -- what a read-back error shows of a value: one line, cut
    assert.equal("two lines", types.show(def_of(2), "two\nlines"))
    assert.is_nil(types.show(def_of(0), "a\r\nb"):find "%c")
    assert.equal(60, #types.show(def_of(0), ("z"):rep(100)))
  end)

  describe("refusals (config errors: nothing could be sent)", function()
    it("read-only types refuse every write", function()
      for _, t in ipairs { 23, 24, 26, 29 } do
        expect.raises_config(function() types.encode(def_of(t), 1) end, "read%-only")
      end
    end)

    it("a list value not among the options names the options", function()
      local def = def_of(8, { name = "Region", options = { "North", "South" } })
      local err = expect.raises_config(function() types.encode(def, "Nort") end, "Region")
      assert.matches("North, South", err.message)
      expect.raises_config(function() types.encode(def_of(20, { options = { "A" } }), { "A", "B" }) end, '"B"')
      local one_line = expect.raises_config(function() types.encode(def, "No\nrth") end, 'no option "No\\nrth"')
      assert.is_nil(tostring(one_line):find "\n")
    end)

    it("a period given as a duration is refused (Planfix stores { durationSec } empty)", function()
      expect.raises_config(function() types.encode(def_of(6), 3600) end, "duration")
      expect.raises_config(function() types.encode(def_of(6), { durationSec = 3600 }) end, "duration")
    end)

    it("values of the wrong shape name the field and the expected shape", function()
      expect.raises_config(function() types.encode(def_of(1, { name = "Amount" }), "12a") end, "Amount.*number")
      expect.raises_config(function() types.encode(def_of(3), "2021-02-30") end, "YYYY%-MM%-DD")
      expect.raises_config(function() types.encode(def_of(4), "25:00") end, "HH:MM")
      expect.raises_config(function() types.encode(def_of(7), "yes") end, "true or false")
      expect.raises_config(function() types.encode(def_of(11), "contact:5") end, "user:N")
      expect.raises_config(function() types.encode(def_of(13), 5) end, "user:N")
      expect.raises_config(function() types.encode(def_of(16), -1) end, "task number")
    end)

    it("names where ids are expected go through ctx.resolve, whose failure is returned", function()
      expect.raises_config(function() types.encode(def_of(11), "Petrov Petr") end, "cannot be looked up")
      local asked = {}
      local ctx = { resolve = function(kind, name)
        asked[#asked + 1] = kind .. ":" .. name
        if name == "Missing" then return nil, "no such entry" end
        return kind == "directory" and 7 or "user:3"
      end }
      assert.same({ id = "user:3" }, types.encode(def_of(11), "Petrov Petr", ctx))
      assert.same({ id = 7 }, types.encode(def_of(9), "Website", ctx))
      assert.same({ { id = 7 }, { id = 2 } }, wire(types.encode(def_of(15), { "Website", 2 }, ctx)))
      local v, err = types.encode(def_of(9), "Missing", ctx)
      assert.is_nil(v)
      assert.equal("no such entry", err)
      assert.same({ "user:Petrov Petr", "directory:Website", "directory:Website", "directory:Missing" }, asked)
    end)

    it("planapi.null clears a field with the empty value of its type", function()
      assert.equal("", types.encode(def_of(0), core.null))
      assert.same({ id = 0 }, types.encode(def_of(9), core.null))
      assert.equal("[]", core.json_encode(types.encode(def_of(14), core.null)))
      assert.is_true(types.same(def_of(9), { id = 0 }, nil))
      assert.is_false(types.same(def_of(9), { id = 2 }, nil))
    end)
  end)
end)
