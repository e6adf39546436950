-- The sandbox's Planfix custom fields, driven over HTTPS with the REST
-- client's raw `call` (not the field layer): definitions of every type for
-- tasks, contacts, projects and users, templates with attached fields,
-- values of each type in the shapes the official OpenAPI file's own
-- response examples give, the writes Planfix answers with success and
-- stores nothing for, directories past one page, the control endpoints
-- that seed all of it, and the request count per operation.
local planapi = require "planapi"
local core = require "planapi.core"
local cjson = require "cjson"
local sandbox = require "sandbox"
local openapi = require "openapi"
local portable = require "portable"

local doc = openapi.load()

-- The spec's custom field types (GET /customfield/type's example) by id.
local function spec_types()
  local ex = doc.paths["/customfield/type"].get.responses["200"].content["application/json"].examples.example
  local out = {}
  for _, t in ipairs(ex.value.customFieldTypes) do out[t.id] = t.name end
  return out
end

-- The shape of a value: its JSON kind, and for objects their sorted keys
-- (for arrays, the shape of the first item).
local function shape(v)
  if type(v) ~= "table" then return type(v) end
  if v[1] ~= nil then return "[" .. shape(v[1]) .. "]" end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return "{" .. table.concat(keys, ",") .. "}"
end

-- Every shape the spec's response examples give a value of each type
-- (customFieldData items whose field names its type).
local function spec_shapes()
  local shapes = {}
  local function walk(node)
    if type(node) ~= "table" then return end
    if type(node.customFieldData) == "table" then
      for _, item in ipairs(node.customFieldData) do
        local f = type(item) == "table" and item.field
        if type(f) == "table" and f.name and type(f.type) == "number" and item.value ~= nil then
          shapes[f.type] = shapes[f.type] or {}
          shapes[f.type][shape(item.value)] = true
        end
      end
    end
    for _, v in pairs(node) do walk(v) end
  end
  walk(doc.paths)
  return shapes
end

-- A request value per type, as the spec's request examples write them
-- (the directory entry examples name the type of each).
local function write_values()
  return {
    [0] = "Test value", [1] = 99, [2] = "<p>Text</p>", [3] = { date = "31-12-2023" }, [4] = { time = "17:55" },
    [5] = "21-12-2021 12:15:00", [6] = { from = { time = "01:15" }, to = { time = "04:40" } }, [7] = true,
    [8] = "Beta", [9] = { id = 137 }, [10] = { id = "contact:12" }, [11] = { id = 3 }, [12] = { id = 11 },
    [13] = { id = "group:1" }, [14] = { { id = "user:1" }, { id = "contact:12" } }, [15] = { { id = 1 }, { id = 2 } },
    [16] = { id = 2 }, [17] = { { id = 1 }, { id = 3 } }, [20] = { "Alpha", "Gamma" }, [21] = { 1, 2 },
    [22] = { id = 1 }, [25] = { address = "New York", longitude = 40.71, latitude = -74.0 }, [27] = "Summary",
    [28] = { from = { date = "21-12-2021", time = "21:15" }, to = { date = "22-12-2021", time = "00:40" } },
  }
end

local READ_ONLY = { [23] = true, [24] = true, [26] = true, [29] = true }

local KINDS = {
  task = { list = "get-customfield-task", object_type = 0, get = "get-task-by-id", update = "post-task-by-id",
    key = "task", id = 1 },
  contact = { list = "get-customfield-contact", object_type = 1, get = "get-contact-by-id",
    update = "post-contact-by-id", key = "contact", id = 12 },
  project = { list = "get-customfield-project", object_type = 3, get = "get-project-by-id",
    update = "post-project-by-id", key = "project", id = 1 },
  user = { list = "get-customfield-user", object_type = 6, get = "get-user-id", update = "post-user-id",
    key = "user", id = 2 },
}

local function by_type(defs)
  local out = {}
  for _, d in ipairs(defs) do out[d.type] = out[d.type] or d end
  return out
end

local function value_of(record, field_id)
  for _, item in ipairs(record.customFieldData or {}) do
    if item.field.id == field_id then return item.value, item end
  end
  return nil
end

describe("sandbox custom fields", function()
  -- One client for every test; each test starts from the seed.
  local rest = sandbox.rest()
  teardown(function() rest:close() end)
  before_each(sandbox.reset)

  it("lists the custom field types the spec's example lists, 0 to 29", function()
    local r = assert(rest:call "get-customfield-types")
    local want = spec_types()
    local got = {}
    for _, t in ipairs(r.customFieldTypes) do got[t.id] = t.name end
    assert.same(want, got)
    assert.equal("Date with time frame", got[28])
    assert.equal("Totals field", got[29])
  end)

  for kind, k in pairs(KINDS) do
    it(("defines a %s field of every type: lists with options, directory fields with their directory")
        :format(kind), function()
      local r = assert(rest:call(k.list))
      local types = by_type(r.customfields)
      for id in pairs(spec_types()) do
        local def = types[id]
        assert.is_table(def, kind .. " has no field of type " .. id)
        assert.equal(k.object_type, def.objectType)
        if id == 8 or id == 20 then assert.is_true(#def.enumValues > 0) end
        if id == 9 or id == 15 then
          local d = assert(rest:call("get-directory-by-id", { id = def.directoryId, fields = "id,name,fields" }))
          assert.equal(def.directoryId, d.directory.id)
        end
      end
    end)

    it(("round-trips a value of every writable type on a %s, in the shapes of the spec's examples")
        :format(kind), function()
      local defs = by_type(assert(rest:call(k.list)).customfields)
      local values, data, ids = write_values(), {}, {}
      for ty, def in pairs(defs) do
        if values[ty] ~= nil then
          data[#data + 1] = { field = { id = def.id }, value = values[ty] }
          ids[#ids + 1] = tostring(def.id)
        end
      end
      local r, meta = assert(rest:call(k.update, { id = k.id, customFieldData = data }))
      assert.equal(200, meta.status)
      assert.is_nil(r.failures)
      local got = assert(rest:call(k.get, { id = k.id, fields = table.concat(ids, ",") }))[k.key]
      local shapes = spec_shapes()
      for ty, def in pairs(defs) do
        if values[ty] ~= nil then
          local v = value_of(got, def.id)
          assert.is_not_nil(v, kind .. ": type " .. ty .. " not stored")
          if shapes[ty] then
            assert.is_true(shapes[ty][shape(v)] == true,
              ("%s type %d: %s is no shape the spec shows"):format(kind, ty, shape(v)))
          end
        end
      end
      assert.same({ date = "31-12-2023", time = "00:00", datetime = "2023-12-31T00:00Z" }, value_of(got, defs[3].id))
      assert.same({ id = 137, value = "Website" }, value_of(got, defs[9].id))
      assert.same({ id = "contact:12", name = "Ivan Ivanov" }, value_of(got, defs[10].id))
      assert.same({ id = "user:3", name = "Anna Smirnova" }, value_of(got, defs[11].id))
    end)
  end

  it("answers only the custom fields named in `fields`", function()
    local t = assert(rest:call("get-task-by-id", { id = 1, fields = "id,101" })).task
    assert.equal(1, #t.customFieldData)
    assert.equal(101, t.customFieldData[1].field.id)
    t = assert(rest:call("get-task-by-id", { id = 1, fields = "id,name" })).task
    assert.is_nil(t.customFieldData)
  end)

  it("refuses a value the field's type cannot take, as a per-field failure", function()
    local r = assert(rest:call("post-task-by-id", { id = 1, name = "Still renamed",
      customFieldData = { { field = { id = 501 }, value = "not a number" } } }))
    assert.equal(1, #r.failures)
    assert.equal("customFieldData.501", r.failures[1].field)
    assert.equal("Still renamed", assert(rest:call("get-task-by-id", { id = 1, fields = "name" })).task.name)
  end)

  describe("silent no-ops", function()
    local function new_task(template)
      return assert(rest:call("post-task", { name = "No-op target", template = { id = template } })).id
    end

    it("a field not on the task's template: 200, nothing stored, the field not answered", function()
      local id = new_task(101) -- "monthly report": every task field but Region (107)
      local r, meta = assert(rest:call("post-task-by-id", { id = id, customFieldData = {
        { field = { id = 106 }, value = "ORD-7" }, { field = { id = 107 }, value = "North" } } }))
      assert.equal(200, meta.status)
      assert.is_nil(r.failures)
      local t = assert(rest:call("get-task-by-id", { id = id, fields = "id,106,107" })).task
      assert.equal("ORD-7", (value_of(t, 106)))
      assert.is_nil((value_of(t, 107)))
      local rec = sandbox.control("GET", "store/tasks/" .. id).record
      assert.is_nil(rec._cf["107"])
      assert.matches("customFieldData.107: ignored, not on the template", rec._history[1].notes[1], 1, true)
    end)

    it("the same with 202 when the update is queued", function()
      local id = new_task(101)
      sandbox.config { queue_updates = { id } }
      local _, meta = assert(rest:call("post-task-by-id", { id = id,
        customFieldData = { { field = { id = 107 }, value = "South" } } }))
      assert.equal(202, meta.status)
      assert.is_nil((value_of(assert(rest:call("get-task-by-id", { id = id, fields = "107" })).task, 107)))
    end)

    it("a field on the template set in the same create is stored", function()
      local id = assert(rest:call("post-task", { name = "With Region", template = { id = 100 },
        customFieldData = { { field = { id = 107 }, value = "East" } } })).id
      assert.equal("East", (value_of(assert(rest:call("get-task-by-id", { id = id, fields = "107" })).task, 107)))
    end)

    it("a list value not among the options is stored as given", function()
      local _, meta = assert(rest:call("post-task-by-id", { id = 1,
        customFieldData = { { field = { id = 107 }, value = "Northwest" } } }))
      assert.equal(200, meta.status)
      assert.equal("Northwest", (value_of(assert(rest:call("get-task-by-id", { id = 1, fields = "107" })).task, 107)))
    end)

    it("a period given as {durationSec} empties the field", function()
      local period = { from = { time = "01:15" }, to = { time = "04:40" } }
      assert(rest:call("post-task-by-id", { id = 1, customFieldData = { { field = { id = 506 }, value = period } } }))
      local r, meta = assert(rest:call("post-task-by-id", { id = 1,
        customFieldData = { { field = { id = 506 }, value = { durationSec = 3600 } } } }))
      assert.equal(200, meta.status)
      assert.is_nil(r.failures)
      local v, item = value_of(assert(rest:call("get-task-by-id", { id = 1, fields = "506" })).task, 506)
      assert.is_table(item) -- answered, and empty (the client reads null as absent)
      assert.is_true(v == nil or v == planapi.null)
    end)

    for ty in pairs(READ_ONLY) do
      it(("a write to a type %d field (read-only) answers 200 and changes nothing"):format(ty), function()
        local id = 500 + ty
        local before = value_of(assert(rest:call("get-task-by-id", { id = 1, fields = tostring(id) })).task, id)
        local r, meta = assert(rest:call("post-task-by-id", { id = 1,
          customFieldData = { { field = { id = id }, value = { id = 5 } } } }))
        assert.equal(200, meta.status)
        assert.is_nil(r.failures)
        assert.same(before, value_of(assert(rest:call("get-task-by-id", { id = 1, fields = tostring(id) })).task, id))
      end)
    end

    it("a partial customFieldData update keeps the other fields", function()
      assert(rest:call("post-task-by-id", { id = 1, customFieldData = { { field = { id = 106 }, value = "ORD-1" } } }))
      local t = assert(rest:call("get-task-by-id", { id = 1, fields = "101,102,106" })).task
      assert.equal("Q1", (value_of(t, 101)))
      assert.equal(42, (value_of(t, 102)))
      assert.equal("ORD-1", (value_of(t, 106)))
    end)
  end)

  describe("templates", function()
    it("list the fields attached to each task template", function()
      local r = assert(rest:call("get-task-list-templates", { fields = "id,name,106,107" }))
      local by_id = {}
      for _, t in ipairs(r.templates) do by_id[t.id] = t end
      assert.is_table(select(2, value_of(by_id[100], 107)))
      assert.is_table(select(2, value_of(by_id[101], 106)))
      assert.is_nil(select(2, value_of(by_id[101], 107)))
    end)

    it("contact templates for contacts or companies (isCompany), project templates", function()
      local contacts = assert(rest:call("get-contact-list-templates", { fields = "id,name,111" })).templates
      assert.same({ "Contact" }, { contacts[1].name, contacts[2] and contacts[2].name })
      assert.is_table(select(2, value_of(contacts[1], 111)))
      local companies = assert(rest:call("get-contact-list-templates", { isCompany = true })).templates
      assert.equal("Company", companies[1].name)
      assert.equal(1, #assert(rest:call("get-project-list-templates", {})).templates)
    end)

    it("seeded through the control endpoint, with their own fields", function()
      local f = sandbox.fields { contact = { { name = "Segment", type = 8, enumValues = { "A", "B" } } } }
      local t = sandbox.templates { contact = { { name = "Partner", fields = { f.contact[1] } } } }
      local contact = assert(rest:call("post-contact", { name = "New partner", template = { id = t.contact[1] } })).id
      local r = assert(rest:call("post-contact-by-id", { id = contact, customFieldData = {
        { field = { id = 111 }, value = "not attached" }, { field = { id = f.contact[1] }, value = "B" } } }))
      assert.is_nil(r.failures)
      local got = assert(rest:call("get-contact-by-id", { id = contact, fields = "111," .. f.contact[1] })).contact
      assert.equal(1, #got.customFieldData)
      assert.equal("B", (value_of(got, f.contact[1])))
    end)
  end)

  describe("definitions", function()
    it("pick their properties with `fields`", function()
      local r = assert(rest:call("get-customfield-task", { fields = "name,enumValues" }))
      for _, d in ipairs(r.customfields) do
        assert.is_number(d.id)
        assert.is_nil(d.type)
        if d.id == 107 then assert.same({ "North", "South", "East", "West" }, d.enumValues) end
      end
    end)

    it("are created through the API with a known type only", function()
      local r = assert(rest:call("post-customfield-task-add", { name = "Ticket", type = 0 }))
      local defs = assert(rest:call "get-customfield-task").customfields
      assert.equal("Ticket", defs[#defs].name)
      assert.equal(r.id, defs[#defs].id)
      local _, err = rest:call("post-customfield-task-add", { name = "Odd", type = 18 })
      assert.equal(400, err.status)
    end)

    it("are replaced wholesale by the control endpoint, which refuses unknown types", function()
      local ids = sandbox.fields { replace = true, task = {
        { id = 900, name = "Region", type = 8, enumValues = { "N" } }, { id = 901, name = "region", type = 0 } } }
      assert.same({ 900, 901 }, ids.task)
      local defs = assert(rest:call "get-customfield-task").customfields
      assert.equal(2, #defs)
      local status, body = sandbox.control_status("POST", "planfix/fields", { task = { { name = "X", type = 19 } } })
      assert.equal(400, status)
      assert.matches("no known type", body.error, 1, true)
    end)
  end)

  describe("directories", function()
    local function entry_names(dir, offset)
      local r = assert(rest:call("post-list-directory-entries", { id = dir, offset = offset, pageSize = 100,
        fields = "key,name," .. 321 }))
      local names = {}
      for _, e in ipairs(r.directoryEntries) do names[#names + 1] = e.name end
      return names, r.directoryEntries
    end

    it("Lead sources has 150 entries in two pages; Website only on the second", function()
      local first, entries = entry_names(3, 0)
      local second = entry_names(3, 100)
      assert.equal(100, #first)
      assert.equal(50, #second)
      assert.equal("Referral", entries[1].name)
      assert.equal("Referral", (value_of(entries[1], 321)))
      local function has(list, name)
        for _, n in ipairs(list) do if n == name then return true end end
        return false
      end
      assert.is_false(has(first, "Website"))
      assert.is_true(has(second, "Website"))
      local r = assert(rest:call("get-customfields-for-directory", { id = 3 }))
      assert.equal("Name", r.customfields[1].name)
    end)

    it("creates an entry that the next page then holds", function()
      local r = assert(rest:call("post-add-directory-entry", { id = 3,
        customFieldData = { { field = { id = 321 }, value = "Podcast" } } }))
      assert.equal(151, r.key)
      local second = entry_names(3, 100)
      assert.equal("Podcast", second[#second])
    end)

    it("seeds a directory with generated or given entries", function()
      local ids = sandbox.directories {
        { name = "Cities", fields = { { name = "Name", type = 0 }, { name = "Population", type = 1 } }, entries = 250 },
        { name = "Colours", entries = { { name = "Red", values = { Name = "Red" } } } },
      }
      local names = entry_names(ids[1], 200)
      assert.equal(50, #names)
      assert.equal("Cities 250", names[50])
      local _, entries = entry_names(ids[2], 0)
      assert.equal("Red", entries[1].name)
    end)
  end)

  describe("directory entries", function()
    it("filter by group, groups only or entries only", function()
      local ids = sandbox.directories { { name = "Tree", entries = {
        { name = "Europe", isGroup = true }, { name = "Paris", parentKey = 1 }, { name = "Oslo", parentKey = 1 },
        { name = "Lima" } } } }
      local function names(body)
        body.id, body.fields = ids[1], "key,name"
        local out = {}
        for _, e in ipairs(assert(rest:call("post-list-directory-entries", body)).directoryEntries) do
          out[#out + 1] = e.name
        end
        return table.concat(out, ",")
      end
      assert.equal("Paris,Oslo", names { groupId = 1 })
      assert.equal("Europe", names { groupsOnly = true })
      assert.equal("Paris,Oslo,Lima", names { entriesOnly = true })
    end)

    it("a directory entry field is set by key and emptied by {id = 0}", function()
      local function set(value)
        assert(rest:call("post-task-by-id", { id = 1, customFieldData = { { field = { id = 509 }, value = value } } }))
      end
      set { id = "60" }
      local t = assert(rest:call("get-task-by-id", { id = 1, fields = "509" })).task
      assert.same({ id = 60, value = "Partner" }, value_of(t, 509))
      set { id = 0 }
      t = assert(rest:call("get-task-by-id", { id = 1, fields = "509" })).task
      assert.is_true(value_of(t, 509) == nil or value_of(t, 509) == planapi.null)
    end)
  end)

  describe("the XML API", function()
    local xml = sandbox.xml()
    teardown(function() xml:close() end)

    local function custom(obj)
      local out = {}
      for _, cv in ipairs(obj.customData or {}) do out[tonumber(cv.id)] = cv.value end
      return out
    end

    it("reads and writes customData in the REST store, in its text forms", function()
      assert(xml:call("task.updateCustomData", { task = { id = 1, customData = { customValue = {
        { id = 503, value = "11-10-2022" }, { id = 510, value = "12" }, { id = 514, value = "[1,2]" },
        { id = 520, value = '["Alpha","Beta"]' }, { id = 507, value = "1" } } } } }))
      local got = custom(assert(xml:call("task.get", { task = { id = 1 } })).task)
      assert.equal("11-10-2022", got[503])
      assert.equal("12", got[510])
      assert.equal("[1,2]", got[514])
      assert.equal('["Alpha","Beta"]', got[520])
      assert.equal("1", got[507])
      local t = assert(rest:call("get-task-by-id", { id = 1, fields = "503,510,507" })).task
      assert.equal("2022-10-11T00:00Z", value_of(t, 503).datetime)
      assert.same({ id = "contact:12", name = "Ivan Ivanov" }, value_of(t, 510))
      assert.is_true(value_of(t, 507))
    end)

    it("ignores a field not on the task's template, and refuses a value the type cannot take", function()
      local id = tonumber(assert(xml:call("task.add", { task = { title = "Monthly", template = 101,
        customData = { customValue = { { id = 106, value = "ORD-9" }, { id = 107, value = "North" } } } } })).task.id)
      local got = custom(assert(xml:call("task.get", { task = { id = id } })).task)
      assert.same({ [106] = "ORD-9" }, got)
      local _, err = xml:call("contact.updateCustomData", { contact = { id = 12,
        customData = { customValue = { { id = 601, value = "not a number" } } } } })
      assert.equal("0015", err.code)
    end)

    it("updates a project's and a contact's customData", function()
      assert(xml:call("project.update", { project = { id = 1,
        customData = { customValue = { { id = 701, value = "5" } } } } }))
      assert.equal("5", custom(assert(xml:call("project.get", { project = { id = 1 } })).project)[701])
      assert(xml:call("contact.updateCustomData", { contact = { id = 12,
        customData = { customValue = { { id = 600, value = "Hello" } } } } }))
      assert.equal("Hello", custom(assert(xml:call("contact.get", { contact = { id = 12 } })).contact)[600])
    end)

    it("adds and updates handbook records, lists handbooks and their structure", function()
      local key = assert(xml:call("handbook.addRecord", { handbook = { id = 3 },
        customData = { customValue = { { id = 321, value = "Podcast" } } } })).key
      assert.equal("151", key)
      assert(xml:call("handbook.updateRecord", { handbook = { id = 3 }, key = 151, name = "Radio",
        customData = { customValue = { { id = 322, value = "Offline" } } } }))
      local rec = assert(xml:call("handbook.getRecord", { handbook = { id = 3 }, key = 151 })).record
      assert.equal("Radio", rec.name)
      local e = assert(rest:call("get-directory-id-entry-key", { id = 3, key = 151, fields = "name,321,322" })).entry
      assert.equal("Podcast", value_of(e, 321))
      assert.equal("Offline", value_of(e, 322))
      local structure = assert(xml:call("handbook.getStructure", { handbook = { id = 3 } })).handbook
      assert.equal("Channel", structure.fields.field[2].name)
      local list = assert(xml:call("handbook.getList", {})).handbooks
      local names = {}
      for _, h in pairs(list) do
        if type(h) == "table" then names[#names + 1] = h.name end
      end
      table.sort(names)
      assert.same({ "Lead sources", "Products", "Regions" }, names)
      local multi = assert(xml:call("handbook.getRecordMulti",
        { handbook = { id = 3 }, records = { key = { 137, 2 } } }))
      assert.equal("Website", multi.records[1].name)
    end)
  end)

  -- The sandbox's answers to the custom field, template and directory
  -- operations, judged by python3-jsonschema against the official file's
  -- response schemas (spec/helpers/openapi_answers.py). The file contradicts
  -- itself in two places, and those messages alone are accepted:
  local SPEC_QUIRKS = {
    -- CustomField.type and .objectType are typed integer, with an enum of
    -- strings such as "0 // Line": no number is one of them.
    "%.type: %d+ is not one of %['0 // Line'", "%.objectType: %d+ is not one of %['0 // Task'",
    -- CustomFieldValueResponse.value is typed object, while its own examples
    -- answer texts, numbers, booleans, lists and null, as each type takes.
    "%.value: .+ is not of type 'object'",
  }
  local PYTHON = "/usr/bin/python3" -- Debian's, where python3-jsonschema is (tools/ensure-deps)

  it("answer custom fields, templates and directory entries as the official schemas say #schema", function()
    local raw = core.client { base_url = sandbox.https_url "rest/", ca_file = sandbox.env().ca_file,
      headers = { Authorization = "Bearer " .. sandbox.TOKEN } }
    local cases = {}
    local function answer(method, spec_path, path, query, body)
      local res = assert(raw:perform(raw:prepare { method = method:upper(), path = path, query = query,
        body = body }))
      cases[#cases + 1] = ('{"method":%q,"path":%q,"status":"%d","body":%s}')
        :format(method, spec_path, res.status, res.body)
    end
    local defs = by_type(assert(rest:call "get-customfield-task").customfields)
    local data, ids = {}, {}
    for ty, value in pairs(write_values()) do
      data[#data + 1] = { field = { id = defs[ty].id }, value = value }
      ids[#ids + 1] = defs[ty].id
    end
    ids[#ids + 1] = 523 -- read-only: answered null
    assert(rest:call("post-task-by-id", { id = 1, customFieldData = data }))
    answer("get", "/customfield/type", "customfield/type")
    for _, kind in ipairs { "task", "contact", "project", "user" } do
      answer("get", "/customfield/" .. kind, "customfield/" .. kind)
    end
    answer("get", "/customfield/task/{id}", "customfield/task/1", { fields = "id,name,type,enumValues" })
    answer("get", "/customfield/directory/{id}", "customfield/directory/3")
    answer("get", "/task/{id}", "task/1", { fields = "id,name," .. table.concat(ids, ",") })
    answer("get", "/contact/{id}", "contact/12", { fields = "id,name,111,112,608" })
    answer("get", "/task/templates", "task/templates", { fields = "id,name,106,107" })
    answer("get", "/contact/templates", "contact/templates", { fields = "id,name,111" })
    answer("get", "/project/templates", "project/templates", { fields = "id,name,121" })
    answer("post", "/directory/{id}/entry/list", "directory/3/entry/list", nil,
      { offset = 100, fields = "key,name,321,322" })
    answer("get", "/directory/{id}/entry/{key}", "directory/3/entry/137", { fields = "key,name,parentKey,321" })
    -- (POST /directory/{id}/entry/: the spec documents a 200 without a body.)
    raw:close()

    local dir = portable.tmpdir()
    portable.write_file(dir .. "/cases.json", "[" .. table.concat(cases, ",") .. "]")
    local out = portable.run(("%s spec/helpers/openapi_answers.py %s %s/cases.json"):format(PYTHON, openapi.PATH, dir))
    portable.rmtree(dir)
    local ok, verdicts = pcall(cjson.decode, out or "")
    assert(ok and type(verdicts) == "table", "the validator did not answer (is python3-jsonschema installed?): "
      .. tostring(out))
    assert.equal(#cases, #verdicts)
    local unexplained, quirks = {}, 0
    for i, messages in ipairs(verdicts) do
      for _, m in ipairs(messages) do
        local known = false
        for _, q in ipairs(SPEC_QUIRKS) do known = known or m:find(q) ~= nil end
        if known then
          quirks = quirks + 1
        else
          unexplained[#unexplained + 1] = cases[i]:match('"path":"[^"]*"') .. " " .. m
        end
      end
    end
    assert.same({}, unexplained)
    assert.is_true(quirks > 0) -- the quirks are still in the file: the validator reads what it is given
  end)

  it("counts requests per operation, and names it in the log", function()
    sandbox.clear_log()
    assert(rest:call "get-customfield-task")
    assert(rest:call "get-customfield-task")
    assert(rest:call("get-customfields-for-task", { id = 1 }))
    assert.equal(2, sandbox.operations "GET /customfield/task")
    assert.equal(1, sandbox.operations "GET /customfield/task/{id}")
    assert.equal("GET /customfield/task/{id}", sandbox.log_of("rest")[3].operation)
    sandbox.reset()
    assert.equal(0, sandbox.operations "GET /customfield/task")
  end)
end)
