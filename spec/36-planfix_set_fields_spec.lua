-- Custom fields by name on the REST client, against the sandbox (issue 20): reads by name
-- decoded by type, set_fields checked before sending (each refusal sends nothing: the sandbox
-- counts the requests it handled per operation), the read-back that turns Planfix's silent
-- no-op into an api error, a 202 (queued) left unverified, definitions read once for many
-- writes, and the command line's field names.
-- The sandbox's default account (sandbox/README.md): task fields "Order number" (line),
-- "Region" (list: North, South, East, West), "Deadline" (date) and one field of every type;
-- task template 100 has every field, template 101 all but "Region".
local core = require "planapi.core"
local planapi = require "planapi"
local openapi = require "openapi"
local portable = require "portable"
local custom = require "planapi.planfix_rest.custom_fields"

-- the sandbox's request counts by operation
local WRITE, READ, DEFS = "POST /task/{id}", "GET /task/{id}", "GET /customfield/task"
local expect = require "expect"
local sandbox = require "sandbox"

local rest, with_region, without_region

local function new_task(template)
  return assert(rest.tasks:create { name = "Fields " .. template, template = { id = template } })
end

-- The oracle for what a write did: the sandbox's stored record (its control API, not planapi).
local function stored(id)
  local rec = sandbox.control("GET", "store/tasks/" .. id).record
  local notes = {}
  for _, h in ipairs(rec._history or {}) do
    for _, n in ipairs(h.notes or {}) do notes[#notes + 1] = n end
  end
  return rec._cf or {}, table.concat(notes, "\n")
end

local function one_line_api_error(field, ok, err)
  assert.is_nil(ok)
  assert.equal("api", err.kind)
  assert.same({ field }, err.fields)
  assert.not_matches("\n", tostring(err))
  assert.not_matches("sandbox%-token", tostring(err))
  return err.message
end

local function counts()
  return { write = sandbox.operations(WRITE), read = sandbox.operations(READ), defs = sandbox.operations(DEFS) }
end

describe("REST custom fields by name (sandbox)", function()
  before_each(function()
    sandbox.reset()
    rest = sandbox.rest()
    -- definitions live in this process's memory cache across clients: a reset account
    -- must be read afresh
    rest.fields:invalidate()
    with_region, without_region = new_task(100), new_task(101)
  end)

  it("writes by name, reads back, and reads by name decoded by type", function()
    local before = counts()
    local result = assert(rest.tasks:set_fields(with_region,
      { ["Order number"] = "ORD-7", Region = "North", Deadline = "2026-12-31" }))
    assert.is_true(result.verified)
    local after = counts()
    assert.equal(1, after.write - before.write)
    assert.equal(1, after.defs - before.defs)
    -- the template check's read of the task's template, then the read-back
    assert.equal(2, after.read - before.read)
    local task = assert(rest.tasks:get(with_region, { fields = { "name", "order number", "Region", "Deadline" } }))
    assert.same({ ["order number"] = "ORD-7", Region = "North", Deadline = "2026-12-31" }, task.fields)
    assert.equal("Fields 100", task.name)
  end)

  it("refuses each mistake before sending: nothing reaches the sandbox", function()
    sandbox.fields { task = { { name = "Amount", type = 1 }, { name = "amount", type = 1 } } }
    rest.fields:invalidate()
    local before = counts()
    expect.raises_config(function() rest.tasks:set_fields(with_region, { Regoin = "North" }) end,
      "unknown custom field 'Regoin'.*closest: Region")
    expect.raises_config(function() rest.tasks:set_fields(with_region, { AMOUNT = 5 }) end,
      "ambiguous.*'Amount' %(id %d+%).*'amount' %(id %d+%)")
    expect.raises_config(function() rest.tasks:set_fields(with_region, { Region = "Nowhere" }) end,
      "no option \"Nowhere\" %(options: North, South, East, West%)")
    expect.raises_config(function() rest.tasks:set_fields(with_region, { ["Data tag summaries (type 23)"] = 1 }) end,
      "read%-only")
    expect.raises_config(function() rest.tasks:set_fields(without_region, { Region = "North" }) end,
      "not on template .* of task " .. without_region .. ": Planfix would answer success and store nothing")
    expect.raises_config(function() rest.tasks:set_fields(with_region, { ["Period of time (type 6)"] = 3600 }) end,
      "stored empty")
    assert.equal(before.write, sandbox.operations(WRITE))
  end)

  it("turns a write Planfix drops silently into an api error naming the field", function()
    -- The task's template is read once per client; another client moves the task to the
    -- template without "Region" meanwhile: the write goes out and Planfix stores nothing.
    assert(rest.tasks:set_fields(with_region, { Region = "South" }))
    assert(sandbox.rest().tasks:update(with_region, { template = { id = 101 } }))
    local before = sandbox.operations(WRITE)
    local ok, err = rest.tasks:set_fields(with_region, { Region = "East", ["Order number"] = "ORD-8" })
    assert.is_nil(ok)
    assert.equal(before + 1, sandbox.operations(WRITE))
    assert.equal("api", err.kind)
    assert.same({ "Region" }, err.fields)
    assert.matches("'Region' %(wrote East, read %(empty%)%)", err.message)
    assert.matches("not on the object's template", err.message)
    assert.not_matches("\n", tostring(err))
    -- the next write reads the task's template again, and refuses before sending
    expect.raises_config(function() rest.tasks:set_fields(with_region, { Region = "East" }) end, "not on template")
    assert.equal(before + 1, sandbox.operations(WRITE))
    -- the same write unchecked and not read back: no error, nothing verified
    local result = assert(rest.tasks:set_fields(with_region, { Region = "East" },
      { check_template = false, read_back = false }))
    assert.is_false(result.verified)
    local ok2, err2 = rest.tasks:verify_fields(with_region, { Region = "East" })
    assert.is_nil(ok2)
    assert.same({ "Region" }, err2.fields)
  end)

  it("catches each silent no-op sent with the checks off; the sandbox's record shows what was stored", function()
    local region = tostring(rest.fields:get("task", "Region").id)
    local period_name = "Period of time (type 6)"
    local period = tostring(rest.fields:get("task", period_name).id)
    local unchecked = { check = false }
    -- (1) a field not on the task's template: nothing stored
    local before = counts()
    local message = one_line_api_error("Region", rest.tasks:set_fields(without_region, { Region = "North" }, unchecked))
    assert.matches("'Region' %(wrote North, read %(empty%)%).*not on the object's template", message)
    local cf, notes = stored(without_region)
    assert.is_nil(cf[region])
    assert.matches("customFieldData.107: ignored, not on the template", notes, 1, true)
    assert.equal(before.write + 1, sandbox.operations(WRITE))
    -- (2) a list value none of the options: stored as given; the definitions are read once more
    -- before the value is blamed
    before = counts()
    message = one_line_api_error("Region", rest.tasks:set_fields(with_region, { Region = "Nowhere" }, unchecked))
    assert.matches("'Region' holds \"Nowhere\", none of its options %(North, South, East, West%): "
      .. "Planfix stores a list value unchecked", message)
    assert.equal("Nowhere", (stored(with_region))[region])
    assert.equal(before.defs + 1, sandbox.operations(DEFS))
    -- (3) a period given as a duration: stored empty (over a period stored before)
    assert(rest.tasks:set_fields(with_region, { [period_name] = { from = "09:00", to = "10:30" } }))
    assert.is_table((stored(with_region))[period])
    message = one_line_api_error(period_name,
      rest.tasks:set_fields(with_region, { [period_name] = { durationSec = 3600 } }, unchecked))
    assert.matches("'Period of time %(type 6%)' %(wrote a period without from and to, read %(empty%)%): "
      .. "a period must be { from = ..., to = ... }", message)
    cf, notes = stored(with_region)
    assert.is_nil(cf[period] ~= core.null and cf[period] or nil)
    assert.matches("customFieldData." .. period .. ": stored empty", notes, 1, true)
  end)

  it("sends planapi.planfix_raw as given, unchecked, and the read-back still judges it", function()
    local period_name = "Period of time (type 6)"
    local period = tostring(rest.fields:get("task", period_name).id)
    expect.raises_config(function() planapi.planfix_raw(nil) end, "planfix_raw takes a wire value")
    local writes = sandbox.operations(WRITE)
    local message = one_line_api_error(period_name, rest.tasks:set_fields(with_region,
      { [period_name] = planapi.planfix_raw { durationSec = 600 } }))
    assert.matches("a period must be", message)
    assert.equal(writes + 1, sandbox.operations(WRITE))
    local sent
    for _, e in ipairs(sandbox.log_of "rest") do
      if e.operation == WRITE then sent = e.json.customFieldData[1].value end
    end
    assert.same({ durationSec = 600 }, sent) -- as given: encode refuses this form
    -- a raw value in the form the field takes sticks and is verified
    local result = assert(rest.tasks:set_fields(with_region,
      { [period_name] = planapi.planfix_raw { from = { time = "08:00" }, to = { time = "09:15" } } }))
    assert.is_true(result.verified)
    assert.same({ from = { time = "08:00" }, to = { time = "09:15" } }, (stored(with_region))[period])
  end)

  it("catches a list value removed from the options after the definitions were cached", function()
    local region = rest.fields:get("task", "Region") -- the definitions, cached
    sandbox.fields { task = { { id = region.id, name = "Region", type = 8,
      enumValues = { "North", "South", "West" } } } }
    local before = counts()
    -- checked against the cached options (East among them), sent, read back as written
    local message = one_line_api_error("Region", rest.tasks:set_fields(with_region, { Region = "East" }))
    assert.matches("'Region' holds \"East\", none of its options %(North, South, West%)", message)
    local after = counts()
    assert.equal(before.write + 1, after.write)
    assert.equal(before.defs + 1, after.defs) -- the one reload
    assert.equal("East", (stored(with_region))[tostring(region.id)])
    -- the reloaded definitions refuse it before sending now
    expect.raises_config(function() rest.tasks:set_fields(with_region, { Region = "East" }) end,
      "no option \"East\" %(options: North, South, West%)")
    assert.equal(after.write, sandbox.operations(WRITE))
    -- an option added since the definitions were read is no error: the answer's own options name it
    sandbox.fields { task = { { id = region.id, name = "Region", type = 8, enumValues = { "North", "Central" } } } }
    assert.is_true(assert(rest.tasks:set_fields(with_region, { Region = "Central" }, { check = false })).verified)
    assert.equal(after.defs, sandbox.operations(DEFS))
  end)

  it("leaves a queued (202) write unverified instead of reading back the old value", function()
    sandbox.config { queue_updates = { with_region } }
    assert(rest.tasks:set_fields(with_region, { ["Order number"] = "ORD-9" })) -- reads the template
    local reads = sandbox.operations(READ)
    local result = assert(rest.tasks:set_fields(with_region, { ["Order number"] = "ORD-10" }))
    assert.is_true(result.queued)
    assert.is_false(result.verified)
    assert.equal(reads, sandbox.operations(READ))
    assert.is_true(rest.tasks:verify_fields(with_region, { ["Order number"] = "ORD-10" }))
    -- verify_fields judges what a queued write stored as the read-back does
    assert(rest.tasks:set_fields(with_region, { Region = "Nowhere" }, { check = false }))
    local message = one_line_api_error("Region", rest.tasks:verify_fields(with_region, { Region = "Nowhere" }))
    assert.matches("none of its options", message)
    local period = { ["Period of time (type 6)"] = { durationSec = 60 } }
    assert.is_true(assert(rest.tasks:set_fields(with_region, period, { check = false })).queued)
    message = one_line_api_error("Period of time (type 6)", rest.tasks:verify_fields(with_region, period))
    assert.matches("a period must be { from = ..., to = ... }", message, 1, true)
  end)

  it("takes directory entries by name, found past the first page and read once", function()
    local entry, set
    for _, d in ipairs(assert(rest.fields:list "task")) do
      if d.type == 9 then entry = entry or d.name elseif d.type == 15 then set = set or d.name end
    end
    local pages = "POST /directory/{id}/entry/list"
    local before = sandbox.operations(pages)
    -- "Website" is entry 137 of the 150 Lead sources: on the second page of 100
    assert(rest.tasks:set_fields(with_region, { [entry] = "website", [set] = { "Referral", "Exhibition" } }))
    assert.equal(before + 2, sandbox.operations(pages))
    local read = assert(rest.tasks:get(with_region, { fields = { entry, set } }))
    assert.equal("Website", read.fields[entry])
    assert.same({ "Referral", "Exhibition" }, read.fields[set])
    local writes = sandbox.operations(WRITE)
    expect.raises_config(function() rest.tasks:set_fields(with_region, { [entry] = "Websit" }) end,
      "unknown entry 'Websit' for directory %d+ of '.*' %(closest: Website")
    assert.equal(writes, sandbox.operations(WRITE))
    assert.equal(before + 2, sandbox.operations(pages))
  end)

  it("takes users by name where a field holds a person; contacts need an id", function()
    local employee, person, contact
    for _, d in ipairs(assert(rest.fields:list "task")) do
      if d.type == 11 then employee = employee or d.name
      elseif d.type == 14 then person = person or d.name
      elseif d.type == 10 then contact = contact or d.name end
    end
    local user = assert(rest.users:get(1, { fields = "id,name,lastname" }))
    local full = (user.name .. " " .. (user.lastname or "")):gsub("%s+$", "")
    assert(rest.tasks:set_fields(with_region, { [employee] = full:upper(), [person] = { full, "group:1" } }))
    local read = assert(rest.tasks:get(with_region, { fields = { employee, person } }))
    assert.matches("^user:1$", read.fields[employee].id)
    assert.same({ "user:1", "group:1" }, { read.fields[person][1].id, read.fields[person][2].id })
    expect.raises_config(function() rest.tasks:set_fields(with_region, { [contact] = "Ivan Ivanov" }) end,
      "takes an id here: pass opts.resolve")
  end)

  it("answers a dry run with the request it would send, checked, and sends no write", function()
    local before = sandbox.operations(WRITE)
    local answer = assert(rest.tasks:set_fields(with_region, { Region = "South", ["Order number"] = 7 },
      { dry_run = true }))
    assert.is_true(answer.dry_run)
    local body = core.json_decode(answer.request.body)
    local order, region = rest.fields:get("task", "Order number").id, rest.fields:get("task", "Region").id
    local sent = {}
    for _, item in ipairs(body.customFieldData) do sent[item.field.id] = item.value end
    assert.same({ [order] = "7", [region] = "South" }, sent)
    assert.equal(before, sandbox.operations(WRITE))
    expect.raises_config(function()
      rest.tasks:set_fields(with_region, { Region = "Nowhere" }, { dry_run = true })
    end, "no option")
  end)

  it("reads the definitions and templates once for many writes", function()
    local tasks = {}
    for i = 1, 4 do tasks[i] = new_task(100) end
    local before = { defs = sandbox.operations(DEFS), templates = sandbox.operations("GET /task/templates") }
    for i, id in ipairs(tasks) do
      assert(rest.tasks:set_fields(id, { ["Order number"] = "ORD-" .. i, Region = "West" }))
    end
    assert.equal(before.defs + 1, sandbox.operations(DEFS))
    assert.equal(before.templates + 1, sandbox.operations("GET /task/templates"))
  end)

  it("takes names in a list's fields and decodes every item", function()
    assert(rest.tasks:set_fields(with_region, { Region = "West", ["Order number"] = "ORD-L" }))
    local seen = 0
    for t in rest.tasks:each({ fields = { "id", "name", "Region", "Order number" } }) do
      assert.is_table(t.fields)
      if t.id == with_region then
        seen = seen + 1
        assert.same({ Region = "West", ["Order number"] = "ORD-L" }, t.fields)
      end
    end
    assert.equal(1, seen)
    local some = assert(rest.tasks:all({ fields = { "name" } }, { max_items = 2 }))
    assert.equal(2, #some)
    assert.same({}, some[1].fields)
    assert.is_string(some[1].name)
  end)

  it("keeps raw calls raw: ids in a fields string need no definitions", function()
    local defs = sandbox.operations(DEFS)
    local task = assert(rest.tasks:get(with_region, { fields = "id,name,106" }))
    assert.is_nil(task.fields)
    assert.equal(defs, sandbox.operations(DEFS))
  end)

  it("writes by name on contacts, projects and users too", function()
    -- the name of the first field of a type (the sandbox has one of every type)
    local function named(entity, t)
      for _, d in ipairs(assert(rest.fields:list(entity))) do
        if d.type == t then return d.name, d.id end
      end
    end
    local contact = assert(rest.contacts:create { name = "Fields", template = { id = 1 } })
    local line = named("contact", 0)
    assert.is_true(assert(rest.contacts:set_fields(contact, { [line] = "by name" })).verified)
    assert.equal("by name", assert(rest.contacts:get(contact, { fields = { line } })).fields[line])
    local user_line = named("user", 0)
    assert.is_true(assert(rest.users:set_fields(1, { [user_line:upper()] = "for the user" })).verified)
    local number, number_id = named("project", 1)
    local project = assert(rest.projects:all({ fields = "id" }, { max_items = 1 }))[1].id
    assert.is_true(assert(rest.projects:set_fields(project, { [number] = 42 })).verified)
    assert.equal(42, assert(rest.projects:get(project, { fields = { number_id } })).fields[number_id])
  end)

  it("lets the bridge example write a job's resolution into a task field by name", function()
    package.path = "examples/?.lua;" .. package.path
    local Bridge = require "planfix_to_planado"
    sandbox.fields { task = { { name = "Planado resolution", type = 0 } } }
    rest.fields:invalidate()
    local task = assert(rest.tasks:create { name = "Bridged" }) -- no template: every field applies
    local b = Bridge.new { planfix = rest, source = "rest", done_status = 3, resolution_field = "Planado resolution" }
    assert(b:report(tostring(task), { uuid = "job-1", serial_no = 7, resolution = { name = "Pump replaced" } }))
    local read = assert(rest.tasks:get(task, { fields = { "status", "planado resolution" } }))
    assert.equal("Pump replaced", read.fields["planado resolution"])
  end)

  it("knows the system field names the spec's response schemas list", function()
    local doc = openapi.load()
    local _, object_schema = openapi.tools(doc)
    for entity, schema in pairs { task = "TaskResponse", contact = "ContactResponse", project = "ProjectResponse",
      user = "UserResponse" } do
      local props = object_schema(doc.components.schemas[schema])
      local names = {}
      for name in pairs(props) do names[name] = true end
      assert.same(names, custom.SYSTEM[entity], entity)
    end
  end)

  it("takes field names on the command line, and lists the fields", function()
    local function cli(arguments)
      -- the sandbox enforces no rate: unpaced, the command spends no second between requests
      return portable.run(sandbox.cli_env() .. " bin/planapi --rate 100/1s " .. arguments)
    end
    assert(rest.tasks:set_fields(with_region, { ["Order number"] = "ORD-CLI" }))
    local out, code = cli(("planfix-rest get-task-by-id id=%d 'fields=name,Order number'"):format(with_region))
    assert.equal(0, code, out)
    local answer = core.json_decode(out)
    assert.equal("ORD-CLI", answer.task.fields["Order number"])
    out, code = cli "planfix-rest get-task-list 'fields=id,Order number' --all"
    assert.equal(0, code, out)
    local listed_order
    for line in out:gmatch "[^\n]+" do
      local t = core.json_decode(line)
      if t.id == with_region then listed_order = t.fields["Order number"] end
    end
    assert.equal("ORD-CLI", listed_order)
    out, code = cli "planfix-rest fields task"
    assert.equal(0, code, out)
    local listed
    for _, d in ipairs(core.json_decode(out)) do
      if d.name == "Region" then listed = d end
    end
    assert.same({ "North", "South", "East", "West" }, listed.options)
    assert.equal("List", listed.type_name)
  end)
end)
