-- The scaffold the three clients share (lua/planapi/client_base.lua): a
-- mistyped resource is a config error naming the resources, raised at the
-- user's line; the fields the clients read stay plain reads.
local planapi = require "planapi"

local HERE = debug.getinfo(1, "S").short_src

-- A transport that records calls: an argument mistake must send nothing.
local function counting()
  local calls = { n = 0 }
  return calls, function()
    calls.n = calls.n + 1
    return { status = 200, headers = {}, body = "{}" }
  end
end

local function clients(transport)
  return {
    planfix_rest = planapi.planfix_rest { account = "acme", token = "t0ken-rest", rate = false, transport = transport },
    planfix_xml = planapi.planfix_xml { account = "acme", api_key = "k3y-xml", token = "t0ken-xml", rate = false,
      transport = transport },
    planado = planapi.planado { api_key = "k3y-planado", rate = false, transport = transport },
  }
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read "*a"
  f:close()
  return s
end

describe("an unknown resource", function()
  -- the slip, the resource meant, and one more resource the message must list
  local cases = {
    { api = "planfix_rest", slip = "task", meant = "tasks", other = "contacts" },
    { api = "planfix_xml", slip = "tasks", meant = "task", other = "handbook" },
    { api = "planado", slip = "job", meant = "jobs", other = "clients" },
  }
  for _, case in ipairs(cases) do
    it(("on %s (%s for %s) is a config error naming the resources, at the user's line, sending nothing")
      :format(case.api, case.slip, case.meant), function()
      local calls, transport = counting()
      local client = clients(transport)[case.api]
      local line, ok, err = debug.getinfo(1, "l").currentline, pcall(function() return client[case.slip]:get(1) end)
      assert.is_false(ok)
      assert.truthy(planapi.is_error(err), tostring(err))
      assert.equal("config", err.kind)
      local msg = tostring(err)
      assert.truthy(msg:find(("resource '%s'"):format(case.slip), 1, true), msg)
      assert.truthy(msg:find(("did you mean %s?"):format(case.meant), 1, true), msg)
      assert.truthy(msg:find(case.other, 1, true), msg)
      assert.falsy(msg:find "\n", msg)
      assert.falsy(msg:find("attempt to index", 1, true))
      local valid = {}
      for _, name in ipairs(err.valid) do valid[name] = true end
      assert.truthy(valid[case.meant] and valid[case.other] and not valid[case.slip])
      assert.equal(("%s:%d"):format(HERE, line), err.where)
      assert.equal(0, calls.n)
      -- the right name still works, and the wrong one stays wrong
      assert.equal("table", type(client[case.meant]))
      assert.has_error(function() return client[case.slip] end)
    end)
  end

  it("is any name that is no method, field or resource, and not a name that is one", function()
    local c = clients(select(2, counting()))
    for api, client in pairs(c) do
      local ok, err = pcall(function() return client.no_such_thing end)
      assert.is_false(ok, api)
      assert.equal("config", err.kind)
      assert.equal("function", type(client.close), api)
      assert.is_nil(client.quota, api) -- a field the loop reads, nil without a quota
    end
  end)

  it("leaves every field the clients' code reads a plain read (the names come from the files' text)", function()
    local function fields(paths)
      local names, n = {}, 0
      for _, path in ipairs(paths) do
        for name in read(path):gmatch "%f[%w_]self%.([%a_][%w_]*)" do
          if not names[name] then n = n + 1 end
          names[name] = true
        end
      end
      return names, n
    end
    local shared, n = fields { "lua/planapi/client_base.lua" }
    assert.truthy(n > 10 and shared.quota and shared.limiter and shared.pacer, "the scan finds the fields")
    for api, client in pairs(clients(select(2, counting()))) do
      local own = fields { ("lua/planapi/%s/init.lua"):format(api) }
      for _, names in ipairs { shared, own } do
        for name in pairs(names) do
          local ok, err = pcall(function() return client[name] end)
          assert.truthy(ok, ("%s.%s: %s"):format(api, name, tostring(err)))
        end
      end
    end
  end)
end)

describe("a call", function()
  -- The names the call loop reads on every call are plain reads, never the
  -- class's __index function (each such read is a Lua call): the wrapped
  -- __index records what a call asks it for.
  it("reads the client's call, prepare, parse and nulls without __index", function()
    local calls = {
      planfix_rest = function(c) return c:call("get-task-list", { pageSize = 1 }) end,
      planfix_xml = function(c) return c:call("task.getList", { pageSize = 1 }) end,
      planado = function(c) return c:call("GET", "jobs") end,
    }
    for api, client in pairs(clients(select(2, counting()))) do
      local class = getmetatable(client)
      local index, asked = class.__index, {}
      class.__index = function(self, key)
        asked[key] = true
        return index(self, key)
      end
      local ok, err = pcall(calls[api], client)
      class.__index = index
      assert.truthy(ok, err)
      for _, name in ipairs { "call", "prepare", "parse", "nulls" } do
        assert.is_nil(asked[name], ("%s.%s went through __index"):format(api, name))
      end
      assert.truthy(next(asked) == nil or asked.quota, "the wrapper sees what __index is asked")
    end
  end)
end)

describe("a config error from the Lua layer", function()
  it("names the user's line: a missing token, an unknown operation, a resource call without its id", function()
    local function raised(f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.truthy(planapi.is_error(err), tostring(err))
      assert.equal("config", err.kind)
      return err
    end
    local line, err
    line, err = debug.getinfo(1, "l").currentline, raised(function() local c = planapi.planfix_rest {}; return c end)
    assert.equal(("%s:%d"):format(HERE, line), err.where)
    local rest = planapi.planfix_rest { account = "acme", token = "t0ken", rate = false,
      transport = select(2, counting()) }
    line, err = debug.getinfo(1, "l").currentline, raised(function() local r = rest:call("get-tsk-list"); return r end)
    assert.equal(("%s:%d"):format(HERE, line), err.where)
    assert.truthy(tostring(err):find("did you mean", 1, true))
    line, err = debug.getinfo(1, "l").currentline, raised(function() local r = rest.tasks:get(); return r end)
    assert.equal(("%s:%d"):format(HERE, line), err.where)
  end)
end)
