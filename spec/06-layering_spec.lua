-- The Lua layer's require graph, read from the files' text (not from what
-- the modules do when loaded): layering runs one way.
--   shared core (planapi.client_base, policy, pager, limiter.*, transport.* ...)
--     <- API packages (planapi.planfix_rest.*, planapi.planfix_xml.*, planapi.planado.*)
--       <- the facade (planapi) and the command line (planapi.cli.*)
-- Nothing shared requires an API package, no API package requires another,
-- and no module reaches itself through its requires.

local API_PACKAGES = { "planapi.planfix_rest", "planapi.planfix_xml", "planapi.planado" }

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read "*a"
  f:close()
  return s
end

-- Every .lua file under lua/planapi, with its module name.
local function modules()
  local out = {}
  local p = assert(io.popen "find lua/planapi -name '*.lua' | sort")
  for path in p:lines() do
    local name = path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    out[#out + 1] = { path = path, name = name }
  end
  p:close()
  return out
end

-- The module names a source requires, comments left out (a usage line in a
-- comment is no dependency).
local function requires_of(src)
  src = src:gsub("%-%-%[(=*)%[.-%]%1%]", ""):gsub("%-%-[^\n]*", "")
  local names = {}
  for name in src:gmatch "require%s*%(?%s*[\"']([%w_.]+)[\"']" do names[#names + 1] = name end
  return names
end

local function api_package(name)
  for _, pkg in ipairs(API_PACKAGES) do
    if name == pkg or name:sub(1, #pkg + 1) == pkg .. "." then return pkg end
  end
  return nil
end

local function top_layer(name)
  return name == "planapi" or name == "planapi.cli" or name:match "^planapi%.cli%." ~= nil
end

-- A cycle in graph (name -> list of names) as a list of names, or nil.
local function find_cycle(graph)
  local state, stack = {}, {}
  local function visit(n)
    state[n] = "open"
    stack[#stack + 1] = n
    for _, m in ipairs(graph[n] or {}) do
      if state[m] == "open" then
        local cycle, from = {}, nil
        for i, s in ipairs(stack) do
          if s == m then from = i end
          if from then cycle[#cycle + 1] = s end
        end
        cycle[#cycle + 1] = m
        return cycle
      elseif state[m] == nil then
        local c = visit(m)
        if c then return c end
      end
    end
    stack[#stack] = nil
    state[n] = "done"
    return nil
  end
  local names = {}
  for n in pairs(graph) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do
    if state[n] == nil then
      local c = visit(n)
      if c then return c end
    end
  end
  return nil
end

local function graph()
  local g = {}
  for _, m in ipairs(modules()) do g[m.name] = requires_of(read(m.path)) end
  return g
end

describe("the Lua layer's require graph", function()
  it("the reader sees the files' requires, and the cycle finder finds a cycle (the oracle can fail)", function()
    local names = requires_of 'local a = require "x.y"\nlocal b = require("z")\n-- require "c"\nrequire \'w\''
    assert.same({ "x.y", "z", "w" }, names)
    assert.same({ "a", "b", "a" }, find_cycle { a = { "b" }, b = { "a" } })
    assert.is_nil(find_cycle { a = { "b" }, b = { "c" } })
    local g = graph()
    assert.truthy(g["planapi.planfix_rest"], "lua/planapi/planfix_rest/init.lua is read")
    assert.truthy(#g["planapi.planfix_rest"] > 3)
    local found = {}
    for _, r in ipairs(g["planapi.client_base"]) do found[r] = true end
    assert.truthy(found["planapi.policy"] and found["planapi.limiter"])
  end)

  it("has no cycle", function()
    local cycle = find_cycle(graph())
    assert.is_nil(cycle, cycle and ("require cycle: " .. table.concat(cycle, " -> ")))
  end)

  it("no shared module requires an API package, the facade or the command line", function()
    local bad = {}
    for name, reqs in pairs(graph()) do
      if not api_package(name) and not top_layer(name) then
        for _, r in ipairs(reqs) do
          if api_package(r) or top_layer(r) then bad[#bad + 1] = name .. " -> " .. r end
        end
      end
    end
    table.sort(bad)
    assert.same({}, bad)
  end)

  it("no API package requires another API package, the facade or the command line", function()
    local bad = {}
    for name, reqs in pairs(graph()) do
      local own = api_package(name)
      if own then
        for _, r in ipairs(reqs) do
          local other = api_package(r)
          if (other and other ~= own) or top_layer(r) then bad[#bad + 1] = name .. " -> " .. r end
        end
      end
    end
    table.sort(bad)
    assert.same({}, bad)
  end)

  it("every API package has its client in init.lua and every module required from planapi exists", function()
    local g = graph()
    for _, pkg in ipairs(API_PACKAGES) do assert.truthy(g[pkg], pkg .. " has an init.lua") end
    for name, reqs in pairs(g) do
      for _, r in ipairs(reqs) do
        if r:match "^planapi%." and r ~= "planapi.core" then
          assert.truthy(g[r], name .. " requires " .. r .. ", which has no file under lua/")
        end
      end
    end
  end)
end)
