-- Directories and names for ids (issue 20), against the sandbox's Planfix emulation: entries
-- found by their fields' values across every page (Lead sources has 150 entries, "Website" is
-- key 137, on the second page of 100), a missing entry created on request and read back,
-- statuses per process, users, groups, projects and directories by name, all through the
-- definitions cache (a miss costs the list's pages once; the TTL and invalidation read again).
-- The oracle is the sandbox: its request counts per operation and its store.
local cache = require "planapi.cache"
local sandbox = require "sandbox"
local expect = require "expect"

local LEAD_LIST = "POST /directory/{id}/entry/list"
local LEAD_ADD = "POST /directory/{id}/entry/"

-- A client whose definitions cache is its own (a namespace per client) on a clock the spec moves.
local function client()
  local clock = { now = 1000 }
  local c = cache.new { namespace = "spec39/" .. tostring({}), clock = function() return clock.now end }
  return sandbox.rest { definitions = { cache = c, ttl = 600 } }, clock
end

local config_error_of = expect.config_error_of

local function stored_entries(dir_id)
  return sandbox.control("GET", "planfix/directories").directories[tostring(dir_id)].entries
end

describe("rest.directories:find", function()
  before_each(function() sandbox.reset() end)

  it("finds an entry past the first page by a field's value, reads its fields by name, then from the cache",
    function()
      local rest = client()
      local e = assert(rest.directories:find("Lead sources", { Name = "Website" }))
      assert.equal(137, e.key)
      assert.equal("Website", e.name)
      assert.same({ Name = "Website", Channel = "Offline" }, e.fields)
      assert.equal(2, sandbox.operations(LEAD_LIST)) -- 150 entries: two pages of 100
      -- every other lookup in that directory is answered from the cache
      assert.equal(150, rest.directories:find("lead sources", "Exhibition").key)
      assert.equal(75, #assert(rest.directories:find_all("Lead sources", { Channel = "Online" })))
      assert.equal(2, sandbox.operations(LEAD_LIST))
      assert.equal(1, sandbox.operations "POST /directory/list")
      assert.equal(1, sandbox.operations "GET /directory/{id}")
    end)

  it("pages a seeded directory of 250 entries and matches on two fields at once", function()
    local id = sandbox.directories { { name = "Cities", fields = { { name = "Name", type = 0 },
      { name = "Population", type = 1 } }, entries = 250 } }[1]
    local rest = client()
    local last = assert(rest.directories:find(id, { Name = "Cities 250" }))
    assert.equal(250, last.key)
    assert.equal(3, sandbox.operations(LEAD_LIST))
    local nf, err = rest.directories:find("Cities", { Name = "Cities 250", Population = 7 })
    assert.is_nil(nf)
    assert.equal("api", err.kind)
    assert.is_true(err.not_found)
    assert.matches("no entry of directory 'Cities' matches", tostring(err))
  end)

  it("create_missing creates the entry with the values asked for, read back; the next find sees it", function()
    local rest = client()
    assert.equal(1, rest.directories:find("Lead sources", "Referral").key) -- the entries cached
    local e = assert(rest.directories:find("Lead sources", { Name = "Trade fair", Channel = "Online" },
      { create_missing = true }))
    assert.is_true(e.created)
    assert.same({ Name = "Trade fair", Channel = "Online" }, e.fields)
    assert.equal(1, sandbox.operations(LEAD_ADD))
    -- the sandbox holds it under the key returned
    local stored = stored_entries(3)[tostring(e.key)] or stored_entries(3)[e.key]
    assert.equal("Trade fair", stored.name)
    -- the create forgot the cached entries: found now, not created again
    local again = assert(rest.directories:find("Lead sources", { Name = "Trade fair" }, { create_missing = true }))
    assert.equal(e.key, again.key)
    assert.is_nil(again.created)
    assert.equal(1, sandbox.operations(LEAD_ADD))
    assert.equal(4, sandbox.operations(LEAD_LIST)) -- read again once after the create
  end)

  it("a created entry is known at once to set_fields' directory values by name", function()
    local rest = client()
    local task = assert(rest.tasks:create { name = "Lead", template = { id = 100 } })
    -- set_fields reads the entry names (and keeps them) before the entry exists
    local err = config_error_of(rest.tasks.set_fields, rest.tasks, task,
      { ["Directory entry (type 9)"] = "Trade fair" })
    assert.matches("unknown entry 'Trade fair'", tostring(err))
    local e = assert(rest.directories:find("Lead sources", { Name = "Trade fair" }, { create_missing = true }))
    assert(rest.tasks:set_fields(task, { ["Directory entry (type 9)"] = "Trade fair" }))
    local read = assert(rest.tasks:get(task, { fields = { "Directory entry (type 9)" } }))
    assert.equal("Trade fair", read.fields["Directory entry (type 9)"])
    assert.is_number(e.key)
  end)

  it("refuses before sending: an unknown field, a list value not among the options, several matches", function()
    local rest = client()
    local err = config_error_of(rest.directories.find, rest.directories, "Lead sources", { Nmae = "Website" })
    assert.matches("unknown field 'Nmae' for directory 'Lead sources' %(closest: Name", tostring(err))
    err = config_error_of(rest.directories.find, rest.directories, "Lead sources",
      { Name = "Fax", Channel = "Carrier pigeon" }, { create_missing = true })
    assert.matches("has no option \"Carrier pigeon\"", tostring(err))
    err = config_error_of(rest.directories.find, rest.directories, "Lead sources", { Channel = "Online" })
    assert.matches("75 entries of directory 'Lead sources' match: Cold call %(key 2%)", tostring(err))
    assert.equal(75, #err.candidates)
    err = config_error_of(rest.directories.find, rest.directories, "Lead sorces", "Website")
    assert.matches("unknown directory 'Lead sorces' for the account %(closest: Lead sources", tostring(err))
    assert.equal(0, sandbox.operations(LEAD_ADD))
  end)

  it("reads the entries again after the TTL, and after invalidate", function()
    local rest, clock = client()
    assert(rest.directories:find("Lead sources", "Website"))
    assert.equal(2, sandbox.operations(LEAD_LIST))
    clock.now = clock.now + 599
    assert(rest.directories:find("Lead sources", "Website"))
    assert.equal(2, sandbox.operations(LEAD_LIST))
    clock.now = clock.now + 2
    assert(rest.directories:find("Lead sources", "Website"))
    assert.equal(4, sandbox.operations(LEAD_LIST))
    assert.is_true(rest.directories:invalidate("Lead sources"))
    assert(rest.directories:find("Lead sources", "Website"))
    assert.equal(6, sandbox.operations(LEAD_LIST))
    assert.equal(2, #assert(rest.directories:fields("Lead sources")))
  end)
end)

describe("rest.names", function()
  before_each(function() sandbox.reset() end)

  it("finds task statuses by name in one process or in all, each process's list read once", function()
    local rest = client()
    assert.same({ id = 6, name = "Waiting for client", process = 2 },
      rest.names:status("waiting for client", { process = "Support process" }))
    assert.equal(3, rest.names:status("Completed", { process = 1 }).id)
    -- "Completed" is in both processes under one id: not ambiguous
    assert.equal(3, rest.names:status("Completed").id)
    assert.equal(5, rest.names:status("Cancelled").id)
    assert.equal(1, sandbox.operations "GET /process/task")
    assert.equal(2, sandbox.operations "GET /process/task/{id}/statuses")
    local err = config_error_of(rest.names.status, rest.names, "Waiting for client", { process = "Default process" })
    assert.matches("unknown task status 'Waiting for client' for process 'Default process' %(closest:", tostring(err))
    err = config_error_of(rest.names.status, rest.names, "Completed", { process = "Suport" })
    assert.matches("unknown task process 'Suport' for the account %(closest: Support process", tostring(err))
  end)

  it("finds users by full name or login, groups, templates and directories by name", function()
    local rest = client()
    assert.equal(2, rest.names:user("Ivan Petrov").id)
    assert.same({ id = 2, name = "Ivan Petrov", login = "ivan.petrov" }, rest.names:user("IVAN.PETROV"))
    -- an answer changed by the caller changes no later answer
    rest.names:user("Ivan Petrov").name = "changed"
    assert.equal("Ivan Petrov", rest.names:user(2).name)
    assert.equal(3, rest.users:find_by_name("Anna Smirnova").id)
    assert.equal(1, sandbox.operations "POST /user/list")
    assert.equal(2, rest.names:user_group("Developers").id)
    assert.equal(3, rest.names:directory("Lead sources").id)
    assert.equal(100, rest.names:template("task", "template: bug report").id)
    local err = config_error_of(rest.names.user, rest.names, "Ivan Petrow")
    assert.matches("unknown user 'Ivan Petrow' for the account %(closest: Ivan Petrov", tostring(err))
  end)

  it("pages projects, refuses an ambiguous name listing both ids, and reads again after invalidate", function()
    sandbox.data { projects = 150 }
    local rest = client()
    assert.equal(137, rest.projects:find_by_name("Project 137").id)
    assert.equal(2, sandbox.operations "POST /project/list")
    local a = assert(rest.projects:create { name = "Project 7" })
    -- still the cached list: one "Project 7" until the names are read again
    assert.equal(7, rest.names:project("Project 7").id)
    rest.names:invalidate "projects"
    local err = config_error_of(rest.names.project, rest.names, "project 7")
    assert.matches(("project name 'project 7' is ambiguous for the account: 'Project 7' %%(id 7%%), 'Project 7' "
      .. "%%(id %d%%); use the id"):format(a), tostring(err))
    assert.equal(2, #err.candidates)
    assert.equal(a, rest.names:project(a).id)
    assert.equal(4, sandbox.operations "POST /project/list")
    config_error_of(rest.names.invalidate, rest.names, "widgets")
  end)
end)
