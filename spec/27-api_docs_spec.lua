-- The API pages (docs/api/planfix-rest.md, planfix-xml.md, planado.md,
-- written by tools/gen_defs.lua): committed as generated, linked from
-- README, a section for every operation, method and resource with each of
-- its parameters, and examples that run: every REST and XML example is run
-- on a client in dry run ("all": nothing is sent), so a parameter the client
-- would refuse (a name, a type, a limit of the official spec) fails here.
local portable = require "portable"
local planapi = require "planapi"

package.path = "tools/?.lua;" .. package.path
local gen = assert(loadfile("tools/gen_defs.lua"))("--module")
local FILES = gen.render()
local PAGES = { "docs/api/planfix-rest.md", "docs/api/planfix-xml.md", "docs/api/planado.md" }

local function page(path) return portable.read_file(path) end

-- The section of a page under a heading (up to the next one of its level or above).
local function section(text, heading)
  local level = heading:match "^#+"
  local start = text:find("\n" .. heading .. "\n", 1, true)
  if not start then return nil end
  local rest = text:sub(start + #heading + 2)
  for at, hashes in rest:gmatch "()\n(#+) " do
    if #hashes <= #level then return rest:sub(1, at) end
  end
  return rest
end

-- The Lua examples of a section.
local function examples(text)
  local out = {}
  for code in text:gmatch "```lua\n(.-)\n```" do out[#out + 1] = code end
  return out
end

-- Run an example with the client under name, in an environment of its own.
local function run(code, name, client, where)
  local env = setmetatable({ [name] = client, planapi = planapi }, { __index = _G })
  local chunk = assert(load(code, "=" .. where, "t", env))
  if setfenv then setfenv(chunk, env) end
  local ok, err = pcall(chunk)
  assert(ok, where .. ": " .. tostring(err))
end

describe("API pages (docs/api/)", function()
  it("are what tools/gen_defs.lua writes, and README links each", function()
    local readme = portable.read_file "README.md"
    for _, path in ipairs(PAGES) do
      assert.are.equal(FILES[path], page(path), path .. " differs from the generator's (make gen)")
      assert.is_truthy(readme:find("(" .. path .. ")", 1, true), "README does not link " .. path)
    end
  end)

  it("have every REST operation with each of its parameters, and its example runs", function()
    local text = page "docs/api/planfix-rest.md"
    local rest = planapi.planfix_rest { account = "a", token = "t", rate = false, dry_run = "all" }
    local ops = planapi.planfix_rest.operations()
    assert.are.equal(114, #ops)
    for _, id in ipairs(ops) do
      local s = assert(section(text, "### " .. id), "no section for " .. id)
      local op = rest.operation(id)
      for _, t in ipairs { op.path_types, op.query, op.body_params or {} } do
        for name in pairs(t) do assert.is_truthy(s:find("| `" .. name .. "` |", 1, true), id .. " " .. name) end
      end
      local codes = examples(s)
      assert.is_true(#codes > 0, id)
      for _, code in ipairs(codes) do run(code, "rest", rest, id) end
    end
    rest:close()
  end)

  it("have every XML method and its example runs", function()
    local text = page "docs/api/planfix-xml.md"
    local xml = planapi.planfix_xml { account = "a", api_key = "k", token = "t", rate = false, dry_run = "all" }
    local params = require "planapi.planfix_xml.params"
    for _, name in ipairs(planapi.planfix_xml.methods()) do
      local s = assert(section(text, "### " .. name), "no section for " .. name)
      if params[name] ~= "" then assert.is_truthy(s:find(params[name], 1, true), name) end
      for _, code in ipairs(examples(s)) do run(code, "xml", xml, name) end
    end
    xml:close()
  end)

  it("have well-formed tables and links that reach a heading of the page", function()
    for _, path in ipairs(PAGES) do
      local text = page(path)
      -- GitHub's anchors: lower case, punctuation but '-' and '_' dropped, blanks to '-'
      local anchors = {}
      for heading in text:gmatch "\n#+ ([^\n]+)" do
        anchors[heading:lower():gsub("[^%w%- _]", ""):gsub(" ", "-")] = true
      end
      for anchor in text:gmatch "%]%(#([^)]+)%)" do assert.is_true(anchors[anchor] or false, path .. " #" .. anchor) end
      local width
      for line in text:gmatch "[^\n]+" do
        if line:sub(1, 1) == "|" then
          local cells = select(2, line:gsub("\\|", ""):gsub("|", "")) - 1
          if line:match "^|%-" or not width then width = width or cells end
          assert.are.equal(width, cells, path .. ": " .. line)
        else
          width = nil
        end
      end
    end
  end)

  it("have every method of the REST and XML resource sugar", function()
    for api, client in pairs { rest = "planfix_rest", xml = "planfix_xml" } do
      local text = page("docs/api/" .. client:gsub("_", "-") .. ".md")
      local sugar = assert(section(text, "## Resource sugar"), api)
      for rname, methods in pairs(require("planapi." .. client .. ".resources").names()) do
        for _, m in ipairs(methods) do
          assert.is_truthy(sugar:find(("`%s.%s:%s("):format(api, rname, m), 1, true), api .. "." .. rname .. ":" .. m)
        end
      end
    end
  end)

  it("have every Planado resource with each of its methods and fields, and its example runs", function()
    local text = page "docs/api/planado.md"
    local resources = require "planapi.planado.resources"
    local pd = planapi.planado { api_key = "k", rate = false, dry_run = "all" }
    for _, name in ipairs(resources.names()) do
      local s = assert(section(text, "## " .. name), "no section for " .. name)
      for method in pairs(resources.bind({}, name)) do
        assert.is_truthy(s:find(("`pd.%s:%s`"):format(name, method), 1, true), name .. ":" .. method)
      end
      for _, code in ipairs(examples(s)) do run(code, "pd", pd, name) end
    end
    pd:close()
    for _, fields in pairs(require "planapi.planado.fields") do
      for field in pairs(fields) do assert.is_truthy(text:find("| `" .. field .. "` |", 1, true), field) end
    end
  end)
end)
