-- A long export that hits the daily quota stops with a quota error and a
-- saved cursor, and the next run (after the quota reset) resumes from it:
-- every item exactly once, none lost, none repeated.
local planapi = require "planapi"
local sandbox = require "sandbox"

-- One run of an export: the items it wrote, and the error that stopped it.
-- The cursor is saved after each item is written, as a real job would.
local function export(pager_of, path, out)
  local pager = pager_of(planapi.cursor.load(path))
  local ok, err = pcall(function()
    for item in pager:each() do
      out[#out + 1] = tostring(item.id)
      assert(planapi.cursor.save(path, pager:position()))
    end
  end)
  assert(planapi.cursor.save(path, pager:position()))
  if ok then return nil end
  return err
end

local function check_once(ids, n)
  local seen = {}
  for _, id in ipairs(ids) do
    assert.is_nil(seen[id], "repeated item " .. id)
    seen[id] = true
  end
  for i = 1, n do assert.is_true(seen[tostring(i)], "lost item " .. i) end
  assert.equal(n, #ids)
end

describe("an export stopped by the daily quota", function()
  local path
  before_each(function()
    sandbox.reset()
    path = os.tmpname()
    os.remove(path)
  end)
  after_each(function() os.remove(path) end)

  it("REST: stops with a quota error and resumes after the reset with no duplicates and no gaps", function()
    sandbox.data { tasks = 250 }
    sandbox.config { quota = { limit = 20000, remaining = 2 } } -- two pages today
    local ids = {}
    local pager_of = function(cursor)
      return sandbox.rest():pager("get-task-list", { fields = "id" }, { cursor = cursor })
    end
    local err = export(pager_of, path, ids)
    assert.equal("quota", err.kind)
    assert.equal(22, err.code)
    assert.equal(200, #ids)
    assert.same({ offset = 200 }, planapi.cursor.load(path))

    sandbox.config { quota = { limit = 20000, remaining = 20000 } } -- the next day
    assert.is_nil(export(pager_of, path, ids))
    check_once(ids, 250)
    assert.is_false(planapi.cursor.load(path)) -- done: a third run does nothing
    assert.is_nil(export(pager_of, path, ids))
    assert.equal(250, #ids)
  end)

  it("REST: the client's own budget stops it before sending, and a crash mid-page resumes too", function()
    sandbox.data { tasks = 250 }
    local ids = {}
    local budget = { limit = 2, reserve = 0 }
    local pager_of = function(cursor)
      return sandbox.rest { quota = budget }:pager("get-task-list", { fields = "id" }, { cursor = cursor })
    end
    local err = export(pager_of, path, ids)
    assert.equal("quota", err.kind)
    assert.is_nil(err.code) -- the client's own check: nothing was sent
    assert.equal(2, #sandbox.log_of "rest")
    -- Next day; this time the job crashes in the middle of a page.
    budget.limit = 100
    local pager = pager_of(planapi.cursor.load(path))
    for task in pager:each() do
      ids[#ids + 1] = tostring(task.id)
      planapi.cursor.save(path, pager:position())
      if #ids == 230 then break end
    end
    assert.same({ offset = 200, skip = 30 }, planapi.cursor.load(path))
    assert.is_nil(export(pager_of, path, ids))
    check_once(ids, 250)
  end)

  it("XML: stops on 0007 and resumes by page", function()
    sandbox.data { tasks = 250 }
    sandbox.config { quota = { limit = 20000, remaining = 1 } }
    local ids = {}
    local pager_of = function(cursor)
      return sandbox.xml():pager("task.getList", {}, { cursor = cursor })
    end
    local err = export(pager_of, path, ids)
    assert.equal("quota", err.kind)
    assert.equal("0007", err.code)
    assert.equal(100, #ids)
    assert.same({ page = 2 }, planapi.cursor.load(path))
    sandbox.config { quota = { limit = 20000, remaining = 20000 } }
    assert.is_nil(export(pager_of, path, ids))
    check_once(ids, 250)
  end)

  it("refuses a damaged cursor file instead of starting over silently", function()
    local f = assert(io.open(path, "wb"))
    f:write "{not json"
    f:close()
    local ok, err = pcall(planapi.cursor.load, path)
    assert.is_false(ok)
    assert.equal("config", err.kind)
  end)
end)
