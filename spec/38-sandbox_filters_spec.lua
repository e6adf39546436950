-- The sandbox's list filters (issue 20): a filter it does not understand (a type it does not
-- emulate, an operator the Planfix REST API documentation does not name, a value of the wrong
-- form, a custom field that is not the entity's or not of the filter's type) is refused as
-- Planfix refuses an invalid parameter (400, code 41, "Invalid parameter value"), where it used
-- to pass silently; the filters it accepts select rows. Raw filters, sent as a script would.
local sandbox = require "sandbox"

local rest

-- The ids a raw list call selects, or nil and the error.
local function ids(op, params)
  local result, err = rest:call(op, params)
  if not result then return nil, err end
  local out = {}
  for _, key in ipairs { "tasks", "contacts", "projects", "users", "directoryEntries", "dataTagEntries" } do
    for _, r in ipairs(result[key] or {}) do out[#out + 1] = r.id or r.key end
  end
  return out
end

local function refused(op, filter, extra)
  local params = { filters = { filter } }
  for k, v in pairs(extra or {}) do params[k] = v end
  local list, err = ids(op, params)
  assert.is_nil(list, "accepted: " .. require("planapi").json.encode(filter))
  assert.equal(400, err.status)
  assert.equal(41, err.code)
  assert.matches("Invalid parameter value", tostring(err), 1, true)
end

describe("sandbox list filters", function()
  setup(function()
    sandbox.reset()
    rest = sandbox.rest()
  end)

  it("refuses a filter type it does not emulate, for every list", function()
    refused("get-task-list", { type = 99999, operator = "equal", value = 1 })
    refused("get-task-list", { type = 4001, operator = "equal", value = "Acme" }) -- a contact's type
    refused("get-contact-list", { type = 10, operator = "equal", value = 1 })     -- a task's type
    refused("get-project-list", { type = 9006, operator = "equal", value = "x" })
    refused("get-user-list", { type = 5001, operator = "equal", value = "x" })
    refused("post-list-directory-entries", { type = 6111, field = 321, operator = "equal", value = "x" }, { id = 3 })
    refused("post-list-data-tag-entries", { type = 6101, field = 201, operator = "equal", value = "x" }, { id = 1 })
    refused("get-task-list", { operator = "equal", value = 1 })                     -- no type
  end)

  it("refuses an operator the documentation does not name, or one the type has no meaning for", function()
    refused("get-task-list", { type = 10, operator = "=", value = 1 })
    refused("get-task-list", { type = 10, operator = "like", value = 1 })
    refused("get-task-list", { type = 2, operator = "gt", value = "user:1" })
    refused("get-task-list", { type = 106, field = 107, operator = "lt", value = "North" })
  end)

  it("refuses a value of the wrong form", function()
    refused("get-task-list", { type = 10, operator = "equal", value = "New" })        -- a status is an id
    refused("get-task-list", { type = 2, operator = "equal", value = 2 })             -- a person is user:N
    refused("get-task-list", { type = 2, operator = "equal", value = "robot:2" })
    refused("get-task-list", { type = 12, operator = "equal", value = "2024-01-31" }) -- a date is an object
    refused("get-task-list", { type = 12, operator = "equal",
      value = { dateType = "otherDate", dateValue = "2024-01-31" } })
    refused("get-task-list", { type = 12, operator = "equal", value = { dateType = "someday" } })
    refused("get-contact-list", { type = 4006, operator = "equal", value = "yes" })
    refused("get-task-list", { type = 102, field = 501, operator = "gt", value = "7" })
  end)

  it("refuses a custom-field filter whose field is missing, another entity's, or of another type", function()
    refused("get-task-list", { type = 106, operator = "equal", value = "North" })
    refused("get-task-list", { type = 106, field = 9999, operator = "equal", value = "North" })
    refused("get-task-list", { type = 106, field = 608, operator = "equal", value = "Alpha" }) -- a contact field
    refused("get-task-list", { type = 101, field = 107, operator = "equal", value = "North" }) -- a list, not a line
  end)

  it("applies the filters it accepts", function()
    local function task_ids(filters) return assert(ids("get-task-list", { filters = filters })) end
    assert.same({ 2, 5, 7 }, task_ids { { type = 10, operator = "equal", value = 1 } })
    assert.same({ 1, 3, 4, 6 }, task_ids { { type = 10, operator = "notequal", value = 1 } })
    assert.same({ 2, 3, 5, 7 }, task_ids { { type = 10, operator = "equal", value = { 1, 3 } } })
    assert.same({ 1, 6 }, task_ids { { type = 2, operator = "equal", value = "user:2" } })
    assert.same({ 2 }, task_ids { { type = 8, operator = "equal", value = "LOGIN" },
      { type = 5, operator = "equal", value = 1 } })
    assert.same({}, task_ids { { type = 10, operator = "equal", value = 1 },
      { type = 10, operator = "equal", value = 2 } })
    assert.same({ 13 }, assert(ids("get-contact-list", { filters = {
      { type = 4001, operator = "equal", value = "garcia" } } })))
    assert.same({ 11, 14 }, assert(ids("get-contact-list", { filters = {
      { type = 4006, operator = "equal", value = true } } })))
    assert.same({ 12, 13 }, assert(ids("get-contact-list", { filters = {
      { type = 4006, operator = "equal", value = false } } }))) -- false is a value
    assert.same({ 2, 4, 6, 8 }, assert(ids("post-list-directory-entries", { id = 3, pageSize = 4, filters = {
      { type = 6106, field = 322, operator = "equal", value = "Online" } } })))
    -- no filters, or an empty list of them: everything
    assert.same({ 1, 2, 3, 4, 5, 6, 7 }, task_ids(require("planapi").array()))
  end)
end)
