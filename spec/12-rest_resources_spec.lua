-- The sugar scripts use most: tasks, comments, contacts, projects, users,
-- data tags, directories and files, against the sandbox's seeded data.
local core = require "planapi.core"
local sandbox = require "sandbox"

describe("Planfix REST sugar", function()
  local rest
  before_each(function()
    sandbox.reset()
    rest = sandbox.rest()
  end)
  after_each(function() rest:close() end)

  it("tasks: get unwraps, create returns the id, update reports queued and failures", function()
    local task, meta = assert(rest.tasks:get(1, { fields = "id,name,status" }))
    assert.equal(1, task.id)
    assert.equal(200, meta.status)
    local id = assert(rest.tasks:create { name = "From sugar" })
    assert.is_number(id)
    assert.equal("From sugar", rest.tasks:get(id, { fields = "name" }).name)
    sandbox.config { queue_updates = { id } }
    local r = assert(rest.tasks:update(id, { name = "Queued", silent = true }))
    assert.is_true(r.queued)
    local log = sandbox.log()
    assert.equal("true", log[#log].query.silent)
  end)

  it("tasks: each pages through the list; get of a missing task is nil, err", function()
    sandbox.data { tasks = 120 }
    local n = 0
    for _ in rest.tasks:each { fields = "id" } do n = n + 1 end
    assert.equal(120, n)
    local t, err = rest.tasks:get(99999)
    assert.is_nil(t)
    assert.equal(1000, err.code)
  end)

  it("comments: add to a task, list them, read and delete one", function()
    local id = assert(rest.tasks:add_comment(1, { description = "Done on site" }))
    local found = false
    for c in rest.tasks:comments(1, { fields = "id,description" }) do
      if c.id == id then found = true end
    end
    assert.is_true(found)
    assert.equal(id, assert(rest.comments:get(id, { fields = "id" })).id)
    assert(rest.comments:delete(id))
    local c, err = rest.comments:get(id)
    assert.is_nil(c)
    assert.equal(5000, err.code)
  end)

  it("contacts: get by plain or prefixed id, create, list", function()
    local a = assert(rest.contacts:get(12, { fields = "id,name" }))
    local b = assert(rest.contacts:get("contact:12", { fields = "id,name" }))
    assert.equal(a.name, b.name)
    local id = assert(rest.contacts:create { name = "New", lastname = "Client" })
    assert.is_number(id)
    local n = 0
    for _ in rest.contacts:each { fields = "id" } do n = n + 1 end
    assert.is_true(n >= 4)
  end)

  it("projects and users", function()
    assert.equal(1, assert(rest.projects:get(1, { fields = "id,name" })).id)
    assert.is_number(assert(rest.projects:create { name = "Rollout" }))
    assert.equal(2, assert(rest.users:get("user:2", { fields = "id,name" })).id)
    local n = 0
    for _ in rest.users:each { fields = "id" } do n = n + 1 end
    assert.is_true(n >= 3)
  end)

  it("data tags and directories: list entries", function()
    local n = 0
    for _ in rest.datatags:entries(1, { fields = "key" }) do n = n + 1 end
    assert.equal(3, n)
    n = 0
    for _ in rest.directories:entries(1, { fields = "key" }) do n = n + 1 end
    assert.equal(3, n)
  end)

  it("files: upload (multipart), download through the redirect without the token, attach", function()
    local data = "binary\0data\255 " .. ("x"):rep(5000)
    local id = assert(rest.files:upload({ data = data, name = "report.bin" }, { target = "task" }))
    assert.is_number(id)
    local up = sandbox.log()[1]
    assert.matches("^multipart/form%-data", up.headers["content-type"])
    assert.equal("task", up.query.targetType)

    -- A transport that records every request it is given.
    local sent, performer = {}, nil
    local watched = sandbox.rest { transport = function(req)
      sent[#sent + 1] = req
      return performer:perform(req)
    end }
    performer = watched.core
    sandbox.clear_log()
    local bytes = assert(watched.files:download(id))
    assert.equal(data, bytes)
    local log = sandbox.log_of "rest"
    assert.equal(1, #log) -- the API call; the presigned URL is outside the API
    assert.equal(302, log[1].status)
    local fetched = sandbox.log_of "download"
    assert.equal(1, #fetched)
    assert.is_nil(fetched[1].headers.authorization)
    assert.equal(2, #sent)
    assert.is_not_nil(sent[1].headers.Authorization)
    assert.matches("/files%-download/", sent[2].url)
    for name in pairs(sent[2].headers) do assert.not_equal("authorization", name:lower()) end

    assert(rest.files:attach(id, "task", 2))
    local e = sandbox.log_of("rest")[2]
    assert.equal("/file/" .. id .. "/attach/task", e.path)
    assert.equal("2", e.query.id)
  end)

  it("files: uploading a path that does not exist is a clear argument error", function()
    local ok, err = pcall(rest.files.upload, rest.files, { path = "/nonexistent/file.pdf" })
    assert.is_false(ok)
    assert.equal("config", err.kind)
    assert.matches("cannot read", err.message)
    assert.equal(0, #sandbox.log()) -- nothing was sent
  end)

  it("unknown resources are a config error (spec/07); bad attach targets raise", function()
    local ok, err = pcall(function() return rest.nothing end)
    assert.is_false(ok)
    assert.equal("config", err.kind)
    assert.has_error(function() rest.files:attach(1, "planet", 2) end)
  end)

  it("an answer without the object asked for is a decode error, never nil and the meta", function()
    local hollow = sandbox.rest { transport = function()
      return { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"result":"success"}' }
    end }
    local v, err = hollow.tasks:get(1)
    assert.is_nil(v)
    assert.is_true(core.is_error(err))
    assert.equal("decode", err.kind)
    v, err = hollow.tasks:create { name = "x" }
    assert.is_nil(v)
    assert.equal("decode", err.kind)
    assert.matches("carried out", err.message)
    hollow:close()
  end)
end)

describe("multipart form fields", function()
  local multipart = require "planapi.planfix_rest.multipart"

  -- As the JSON and query encoders do, on 5.4 and LuaJIT alike: tostring
  -- gives "42.0" for a 5.4 float and 1.2345678901235e+15 under LuaJIT.
  it("write numbers without a fraction or an exponent when integral, others exactly", function()
    assert.equal("42", multipart.field_part("n", 42).data)
    assert.equal("42", multipart.field_part("n", 42.0).data)
    assert.equal("-7", multipart.field_part("n", -7).data)
    assert.equal("1234567890123456", multipart.field_part("n", 1234567890123456).data)
    assert.equal("0.1", multipart.field_part("n", 0.1).data)
    assert.equal(1 / 3, tonumber(multipart.field_part("n", 1 / 3).data))
    assert.equal("true", multipart.field_part("b", true).data)
  end)
end)
