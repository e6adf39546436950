-- The editor definitions (types/: a Lua language server addon of LuaCATS
-- annotations, written by tools/gen_defs.lua): the committed files are what
-- the generator writes, they parse (as Lua, and line by line against a
-- strict grammar of the annotations, every type name declared), and they
-- cover the whole API. Coverage is read from elsewhere than the generator:
-- REST operationIds from the official OpenAPI file's text, XML methods and
-- Planado resources from the clients at run time, every option set from
-- what the constructors themselves answer to an unknown option ("valid:
-- ..."), the error's fields from README's Errors table and the fields the
-- Lua layer sets on errors.
local portable = require "portable"
local luacats = require "luacats"
local openapi = require "openapi"
local planapi = require "planapi"

package.path = "tools/?.lua;" .. package.path
local gen = assert(loadfile("tools/gen_defs.lua"))("--module")
local FILES = gen.render()

-- The generated annotation files, as committed.
local function committed()
  local out = {}
  for path in pairs(FILES) do
    if path:match "%.lua$" then out[path] = portable.read_file(path) end
  end
  return out
end

local MODEL = luacats.read(committed())

local function class(name)
  return assert(MODEL.classes[name], "no class " .. name)
end

-- The names a constructor lists in its "unknown option" error.
local function valid_names(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "the unknown option was accepted")
  local list = tostring(err):match "%(valid: ([^)]*)%)"
  assert(list, "no list of valid names in: " .. tostring(err))
  local names = {}
  for item in list:gmatch "[^,]+" do
    local name = item:match "^%s*([%w_]+)%s*$" -- "the answers in order" names no option
    if name then names[#names + 1] = name end
  end
  assert(#names >= 2, "too few names: " .. list)
  return names
end

local function missing(names, fields)
  local out = {}
  for _, n in ipairs(names) do
    if not fields[n] then out[#out + 1] = n end
  end
  return out
end

describe("editor definitions (types/)", function()
  it("are what tools/gen_defs.lua writes (run make gen after changing a table)", function()
    local drifted = {}
    for path, text in pairs(FILES) do
      if portable.read_file(path) ~= text then drifted[#drifted + 1] = path end
    end
    table.sort(drifted)
    assert.are.same({}, drifted)
    local listed = portable.run "find types -type f | sort"
    for path in listed:gmatch "[^\n]+" do
      assert.is_not_nil(FILES[path], path .. " is in types/ but the generator does not write it")
    end
  end)

  it("load as Lua and pass the annotation grammar, every type name declared", function()
    local paths = {}
    for path, text in pairs(committed()) do
      assert(load(text, "@" .. path))
      paths[#paths + 1] = path
    end
    -- and Lua 5.4's compiler, whichever interpreter runs this; one file a
    -- call (Debian 12's luac5.4 -p aborts with a double free on two files)
    local out, code = portable.run("for f in " .. table.concat(paths, " ") .. "; do luac5.4 -p \"$f\" || exit 1; done")
    assert.are.equal(0, code, out)
    assert.are.same({}, MODEL.errors)
  end)

  it("are an addon folder: config.json beside library/, which require 'planapi' finds", function()
    -- the keys and shapes of LLS-Addons' addon_config.schema.json
    local config = planapi.json.decode(portable.read_file "types/config.json")
    for key in pairs(config) do
      assert.is_truthy(({ name = true, words = true, files = true, settings = true })[key], key)
    end
    assert.are.equal("planapi", config.name)
    assert.is_table(config.settings)
    assert.is_true(#config.words >= 1)
    for _, code in ipairs { 'local p = require "planapi"', "local r = require('planapi.planfix_rest')" } do
      assert.is_truthy(code:find(config.words[1]), code)
    end
    assert.is_falsy(('local p = require "planapi_other"'):find(config.words[1]))
    assert.is_table(class("planapi").funcs.planado)
    assert.is_truthy(portable.read_file("types/library/planapi.lua"):find "\nreturn planapi\n$")
  end)
end)

describe("editor definitions cover", function()
  it("all 114 REST operations of the OpenAPI file, each an overload of call with its parameters", function()
    local ids = {}
    for id in portable.read_file(openapi.PATH):gmatch '"operationId"%s*:%s*"([^"]+)"' do ids[#ids + 1] = id end
    assert.are.equal(114, #ids)
    local alias = MODEL.aliases["planapi.planfix_rest.Operation"].values
    assert.are.equal(#ids, #alias)
    local funcs = class("planapi.planfix_rest.Client").funcs
    local overloads = table.concat(funcs.call.overloads, "\n")
    local prepare = table.concat(funcs.prepare.overloads, "\n")
    local each = table.concat(funcs.each.overloads, "\n")
    local rest = planapi.planfix_rest { account = "a", token = "t", rate = false }
    for _, id in ipairs(ids) do
      local literal = ('op: "%s"'):format(id)
      assert.is_truthy(overloads:find(literal, 1, true), id)
      assert.is_truthy(prepare:find(literal, 1, true), id)
      -- a list the pager takes (it refuses the others)
      local pageable = pcall(rest.pager, rest, id, {})
      assert.are.equal(pageable, each:find(literal, 1, true) ~= nil, id)
      local fields = class("planapi.planfix_rest.params." .. id:gsub("%W", "_")).fields
      local op = rest.operation(id)
      for _, t in ipairs { op.path_types, op.query, op.body_params or {} } do
        for name in pairs(t) do assert.is_table(fields[name], id .. " " .. name) end
      end
    end
    rest:close()
  end)

  it("all 79 XML methods, each an overload of call", function()
    local methods = planapi.planfix_xml.methods()
    assert.are.equal(79, #methods)
    local funcs = class("planapi.planfix_xml.Client").funcs
    local overloads = table.concat(funcs.call.overloads, "\n")
    local each = table.concat(funcs.each.overloads, "\n")
    for _, m in ipairs(methods) do
      assert.is_truthy(overloads:find(('method: "%s"'):format(m), 1, true), m)
      local paged = require("planapi.planfix_xml").method(m).paged == true
      assert.are.equal(paged, each:find(('method: "%s"'):format(m), 1, true) ~= nil, m)
    end
    assert.are.equal(79, #MODEL.aliases["planapi.planfix_xml.Method"].values)
  end)

  it("every resource of the three clients and each of its methods", function()
    local clients = {
      planfix_rest = planapi.planfix_rest { account = "a", token = "t", rate = false },
      planfix_xml = planapi.planfix_xml { account = "a", api_key = "k", token = "t", rate = false },
      planado = planapi.planado { api_key = "k", rate = false },
    }
    for api, client in pairs(clients) do
      local ok, err = pcall(function() return client.no_such_resource end)
      assert.is_false(ok)
      assert.is_true(#err.valid > 0)
      local fields = class("planapi." .. api .. ".Client").fields
      for _, name in ipairs(err.valid) do
        assert.is_table(fields[name], api .. "." .. name)
        local funcs = class("planapi." .. api .. ".resource." .. name).funcs
        for method in pairs(client[name]) do assert.is_table(funcs[method], api .. "." .. name .. ":" .. method) end
      end
      client:close()
    end
  end)

  it("every resource method README and the examples call", function()
    local classes = { rest = "planapi.planfix_rest", xml = "planapi.planfix_xml", pd = "planapi.planado" }
    local texts = { portable.read_file "README.md" }
    for path in portable.run("ls examples/*.lua examples/spec/*.lua 2>/dev/null"):gmatch "[^\n]+" do
      texts[#texts + 1] = portable.read_file(path)
    end
    local seen = 0
    for _, text in ipairs(texts) do
      for client, rname, method in text:gmatch "%f[%w_](%l+)%.([%l_]+):([%l_]+)%s*[%({\"']" do
        if classes[client] then
          seen = seen + 1
          local cls = class(("%s.resource.%s"):format(classes[client], rname))
          assert.is_table(cls.funcs[method], ("%s.%s:%s"):format(client, rname, method))
        end
      end
    end
    assert.is_true(seen > 20, "too few calls found: " .. seen)
  end)

  it("every documented field of Planado's writes", function()
    for kind, fields in pairs(require "planapi.planado.fields") do
      local declared = class("planapi.planado.fields." .. kind).fields
      for name in pairs(fields) do assert.is_table(declared[name], kind .. "." .. name) end
    end
  end)

  it("every option of every constructor, call and pager, as the code lists them", function()
    local rest = planapi.planfix_rest { account = "a", token = "t", rate = false }
    local xml = planapi.planfix_xml { account = "a", api_key = "k", token = "t", rate = false }
    local pd = planapi.planado { api_key = "k", rate = false }
    local bad = { zzz = 1 }
    local cases = {
      { "planapi.planfix_rest.Options", planapi.planfix_rest, bad },
      { "planapi.planfix_xml.Options", planapi.planfix_xml, bad },
      { "planapi.planado.Options", planapi.planado, bad },
      { "planapi.planfix_rest.CallOptions", rest.prepare, rest, "get-task-by-id", { id = 1 }, bad },
      { "planapi.planfix_xml.CallOptions", xml.prepare, xml, "task.get", {}, bad },
      { "planapi.planado.CallOptions", pd.prepare, pd, "GET", "jobs", {}, bad },
      { "planapi.planfix_rest.PagerOptions", rest.pager, rest, "get-task-list", {}, bad },
      { "planapi.planfix_xml.PagerOptions", xml.pager, xml, "task.getList", {}, bad },
      { "planapi.planado.PagerOptions", pd.pager, pd, "jobs", {}, bad },
      { "planapi.RetryOptions", planapi.policy.new, bad },
      { "planapi.Hooks", planapi.planado, { api_key = "k", rate = false, hooks = { zzz = print } } },
      { "planapi.Rate", planapi.planado, { api_key = "k", rate = bad } },
      { "planapi.QuotaOptions", planapi.planado, { api_key = "k", rate = false, quota = bad } },
      { "planapi.events.ReceiverOptions", planapi.events.receiver, bad },
      { "planapi.planfix_events.Options", planapi.planfix_events, bad },
      { "planapi.planado_webhook.Options", planapi.planado_webhook, bad },
      { "planapi.events.ServerOptions", require("planapi.events.server").new, bad },
      { "planapi.testing.FakeOptions", require("planapi.testing").fake, bad },
      { "planapi.events.RedisStoreOptions", planapi.events.redis, bad },
    }
    local unpack = table.unpack or unpack -- LuaJIT: 5.1's
    for _, case in ipairs(cases) do
      local names = valid_names(unpack(case, 2))
      assert.are.same({}, missing(names, luacats.all_fields(MODEL, case[1])), case[1])
    end
    for _, c in ipairs { rest, xml, pd } do c:close() end
  end)

  it("every field of the error: README's Errors table and each field the Lua layer sets", function()
    local fields = class("planapi.Error").fields
    local readme = portable.read_file("README.md"):match "\n## Errors\n(.*)$"
    local table_text = readme:match "\n| field | meaning |\n|%-+|%-+|\n(.-)\n\n"
    local names = {}
    for name in table_text:gmatch "\n?| `([%w_]+)` |" do names[#names + 1] = name end
    assert.is_true(#names >= 10, "README's Errors table was not found")
    local set = portable.run "grep -rhoE '\\b[a-z]*err\\.[a-z_]+( *,[ a-z_.]+)* *= ' lua/"
    for list in set:gmatch "[^\n]+" do
      for name in list:gmatch "err%.([%w_]+)" do names[#names + 1] = name end
    end
    assert.are.same({}, missing(names, fields))
    assert.are.same(planapi.error_kinds, MODEL.aliases["planapi.ErrorKind"].values)
  end)

  it("every member of require 'planapi', and nothing the modules lack", function()
    local cls = class "planapi"
    for key in pairs(planapi) do
      assert.is_truthy(cls.fields[key] or cls.funcs[key], "planapi." .. key)
    end
    for key in pairs(cls.fields) do assert.is_not_nil(planapi[key], "planapi." .. key) end
    for key in pairs(cls.funcs) do assert.is_function(planapi[key], "planapi." .. key) end
  end)

  it("the modules of their own: each file's functions are the module's", function()
    local modules = { ["planapi.cache"] = "planapi/cache.lua", ["planapi.testing"] = "planapi/testing.lua",
      ["planapi.limiter"] = "planapi/limiter.lua", ["planapi.events.server"] = "planapi/events/server.lua",
      ["planapi.planfix_rest"] = "planapi/planfix_rest.lua", ["planapi.planfix_xml"] = "planapi/planfix_xml.lua",
      ["planapi.planado"] = "planapi/planado.lua" }
    for name, path in pairs(modules) do
      local text = assert(FILES["types/library/" .. path], path)
      local var = text:match "\nreturn ([%w_]+)\n$"
      local cls
      for _, c in pairs(MODEL.classes) do
        if c.name:gsub("%W", "_") == var then cls = c end
      end
      assert(cls, path .. " returns no class")
      local module = require(name)
      -- a client class finds the methods every client has in scaffold.methods
      local shared = require("planapi.scaffold").methods
      for fname in pairs(cls.funcs) do
        assert.is_function(module[fname] or shared[fname], name .. "." .. fname)
      end
    end
  end)

  it("the receivers' methods, on receivers made by the facade", function()
    local receivers = {
      ["planapi.events.Receiver"] = planapi.events.receiver { secret = "s", secret_in = "header:X-Secret",
        parse = function() return { id = "1" } end },
      ["planapi.planado_webhook.Hook"] = planapi.planado_webhook { secret = "s" },
    }
    for name, receiver in pairs(receivers) do
      local cls = class(name)
      local names = {}
      for fname in pairs(cls.funcs) do names[#names + 1] = fname end
      for _, parent in ipairs(cls.parents) do
        for fname in pairs(class(parent).funcs) do names[#names + 1] = fname end
      end
      assert.is_true(#names >= 4, name)
      for _, fname in ipairs(names) do assert.is_function(receiver[fname], name .. ":" .. fname) end
    end
    local event_class = require("planapi.planfix_events").Event
    for fname in pairs(class("planapi.planfix_events.Event").funcs) do assert.is_function(event_class[fname], fname) end
  end)

  it("a cursor's export: its declared methods and options", function()
    local path = os.tmpname()
    local export = assert(planapi.cursor.export { output = path })
    for fname in pairs(class("planapi.cursor.Export").funcs) do assert.is_function(export[fname], fname) end
    export:close()
    os.remove(path)
    local fields = class("planapi.cursor.ExportOptions").fields
    for _, name in ipairs { "output", "cursor", "meta" } do assert.is_table(fields[name], name) end
    local ok, err = pcall(planapi.cursor.export, { output = path, zzz = 1 })
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("unknown option 'zzz'", 1, true))
  end)

  it("planapi.testing: each of its functions and answer builders", function()
    local testing = require "planapi.testing"
    local cls = class "planapi.testing"
    for key, v in pairs(testing) do
      assert.is_truthy(cls.fields[key] or cls.funcs[key], "testing." .. key)
      if type(v) == "table" then
        local funcs = class("planapi.testing." .. key).funcs
        for name in pairs(v) do assert.is_table(funcs[name], ("testing.%s.%s"):format(key, name)) end
      end
    end
    local fake = testing.fake {}
    for name in pairs(class("planapi.testing.Fake").funcs) do assert.is_function(fake[name], "fake:" .. name) end
  end)

  it("the cassettes' options, as testing.record and testing.replay list them", function()
    local testing = require "planapi.testing"
    local text = FILES["types/library/planapi/testing.lua"]
    for _, f in ipairs { testing.record, testing.replay } do
      for _, name in ipairs(valid_names(f, "x.cassette.json", { zzz = 1 })) do
        assert.is_truthy(text:find(name .. ": ", 1, true), name)
      end
    end
  end)
end)
