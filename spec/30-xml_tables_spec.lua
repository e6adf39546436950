-- The Planfix XML data tables (planfix_xml_methods, planfix_xml_errors) checked
-- against the facts file itself: the §1.9 method table, the §1.6 count
-- exceptions and the §1.10 error table are parsed here, independently of the
-- hand-written tables.
local FACTS = "../shared/docs/api-facts.md"
local METHODS_SRC = "lua/planapi/planfix_xml/methods.lua"

local function slurp(path) return (assert(require("portable").read_file(path))) end

-- the text from the heading that starts with `from` up to the next "### " heading
local function section(text, from)
  local s = assert(text:find("\n" .. from, 1, true), "section not found: " .. from)
  local e = text:find("\n### ", s + 1, true) or #text
  return text:sub(s, e)
end

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

-- the cells of a markdown table row; `\|` inside a cell is not a separator
local function cells(line)
  line = line:gsub("\\|", "\0")
  local out = {}
  for c in line:gmatch("|([^|]*)") do out[#out + 1] = trim(c:gsub("%z", "|")) end
  if out[#out] == "" then out[#out] = nil end
  return out
end

local function keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local facts = slurp(FACTS)

-- §1.9 rows: name -> { params = ..., root = ... }
local rows, row_count = {}, 0
for line in section(facts, "### 1.9"):gmatch("[^\n]+") do
  local c = cells(line)
  if line:match("^|") and #c >= 3 and c[1]:match("^%a+%.%a+$") then
    assert(not rows[c[1]], "duplicate row " .. c[1])
    rows[c[1]] = { params = c[2], root = c[3] }
    row_count = row_count + 1
  end
end

-- §1.10 rows expanded: code -> { class text, meaning segment for that code }
local CLASS_OF = {
  { "^re%-auth", "reauth" }, { "^stop: config", "config" }, { "^stop: quota", "quota" },
  { "^retry later", "retry" }, { "^caller error", "caller" },
}
local doc_codes, doc_code_count = {}, 0
for line in section(facts, "### 1.10"):gmatch("[^\n]+") do
  local c = cells(line)
  if line:match("^|") and #c >= 3 and c[1]:match("^%d") then
    local nums = {}
    for n in c[1]:gmatch("%d+") do nums[#nums + 1] = n end
    local codes = {}
    if #nums == 2 and (c[1]:find("\226\128\147", 1, true) or c[1]:find("-", 1, true)) then
      for n = tonumber(nums[1]), tonumber(nums[2]) do
        codes[#codes + 1] = ("%0" .. #nums[1] .. "d"):format(n)
      end
    else
      codes = nums
    end
    local ctext = c[3]:gsub("%*", ""):lower()
    local class
    for _, p in ipairs(CLASS_OF) do
      if ctext:match(p[1]) then class = p[2] end
    end
    assert(class, "unknown class column: " .. c[3])
    for _, code in ipairs(codes) do
      -- the meaning for one code of a multi-code row is the text after "<code> " up to ";"
      local seg = #codes > 1 and c[2]:match(code .. "%s+([^;]+)") or c[2]
      assert(seg, "no meaning for " .. code .. " in row " .. c[1])
      assert(not doc_codes[code], "code twice in the facts: " .. code)
      doc_codes[code] = { class = class, meaning = seg }
      doc_code_count = doc_code_count + 1
    end
  end
end

describe("planfix_xml_methods", function()
  local T = require "planapi.planfix_xml.methods"
  local M = T.methods

  it("the facts table parses to the 79 methods it announces", function()
    local announced = tonumber(section(facts, "### 1.9"):match("(%d+) methods in total"))
    assert.equal(79, announced)
    assert.equal(announced, row_count)
    assert.is_truthy(rows["auth.login"])
    assert.is_nil(rows["client.getList"])
  end)

  it("has every method of §1.9 and nothing else", function()
    local missing, extra = {}, {}
    for name in pairs(rows) do
      if not M[name] then missing[#missing + 1] = name end
    end
    for name in pairs(M) do
      if not rows[name] then extra[#extra + 1] = name end
    end
    table.sort(missing); table.sort(extra)
    assert.same({}, missing)
    assert.same({}, extra)
  end)

  it("root matches the first backticked element of the row; file.download is raw", function()
    for _, name in ipairs(keys(rows)) do
      local want = rows[name].root:match("^`<(%w+)")
      local m = M[name]
      assert.is_table(m, name)
      assert.equal(want, m.root, name)
      if want == nil then
        assert.is_true(m.raw, name .. " has no XML root, so it must be raw")
      else
        assert.is_nil(m.raw, name)
      end
    end
    assert.is_true(M["file.download"].raw)
  end)

  it("counts follows the count/totalCount attributes shown in the row", function()
    for _, name in ipairs(keys(rows)) do
      -- the attributes of the first backticked element: `<tasks count totalCount>` -> " count totalCount"
      local attrs = rows[name].root:match("^`<%w+([^>]*)>") or ""
      local has_total = attrs:find("%f[%w]totalCount%f[^%w]") ~= nil
      local has_count = attrs:find("%f[%w]count%f[^%w]") ~= nil
      local want = has_total and (has_count and "both" or "total") or (has_count and "count" or "none")
      assert.is_table(M[name], name)
      assert.equal(want, M[name].counts or "none", name)
      if want ~= "none" then assert.is_true(M[name].list, name .. " has counts, so it is a list") end
    end
  end)

  it("follows the §1.6 count exceptions", function()
    local s = section(facts, "### 1.6")
    local only_total = s:match("only `totalCount`:(.-)only `count`")
    local only_count = s:match("only `count`:(.-)\n")
    local neither = s:match("neither:(.-)For these")
    assert.is_truthy(only_total and only_count and neither)
    local roots = {}
    for r in only_total:gmatch("`(%w+)`") do roots[r] = true end
    assert.equal(7, #keys(roots))
    for name, m in pairs(M) do
      if roots[m.root] then assert.equal("total", m.counts, name) end
    end
    assert.equal("task.getMulti", only_count:match("`([%w.]+)`"))
    assert.equal("count", M["task.getMulti"].counts)
    local n = 0
    for pat in neither:gmatch("`([%w.*]+)`") do
      local prefix, star = pat:match("^([%w.]+)(%*?)$")
      for name, m in pairs(M) do
        if name == prefix or (star == "*" and name:sub(1, #prefix) == prefix) then
          n = n + 1
          assert.equal("none", m.counts, name)
          assert.is_true(m.list, name)
        end
      end
    end
    assert.equal(5, n) -- getRecords, getRecordMulti, getHandbook, getData, getDataByCondition
  end)

  it("paged exactly when the row takes pageCurrent", function()
    for _, name in ipairs(keys(rows)) do
      local want = rows[name].params:find("pageCurrent", 1, true) ~= nil
      assert.is_table(M[name], name)
      assert.equal(want, M[name].paged == true, name)
      if want then assert.is_truthy(rows[name].params:find("pageSize", 1, true), name) end
    end
  end)

  it("silent exactly where the row takes the silent flag", function()
    for _, name in ipairs(keys(rows)) do
      local want = rows[name].params:find("%f[%w]silent%f[^%w]") ~= nil
      assert.is_table(M[name], name)
      assert.equal(want, M[name].silent == true, name)
    end
    assert.is_true(M["task.update"].silent)
    assert.is_true(M["contact.update"].silent)
  end)

  it("fields are consistent: group, list/item/counts, writes", function()
    local WRITE_VERBS = {
      add = true, update = true, delete = true, change = true, move = true,
      accept = true, reject = true, upload = true, manage = true,
    }
    for name, m in pairs(M) do
      assert.equal(name:match("^(%w+)%."), m.group, name)
      if m.list then
        assert.is_string(m.item, name)
        assert.is_truthy(({ both = 1, total = 1, count = 1, none = 1 })[m.counts], name)
      else
        assert.is_nil(m.item, name)
        assert.is_nil(m.counts, name)
        assert.is_nil(m.paged, name)
      end
      local verb = name:match("%.(%l+)")
      assert.equal(WRITE_VERBS[verb] == true, m.writes == true, name)
      for k in pairs(m) do
        assert.is_truthy(({ root = 1, item = 1, list = 1, paged = 1, counts = 1, group = 1,
          raw = 1, writes = 1, silent = 1 })[k], name .. ": unknown field " .. k)
      end
    end
    assert.is_nil(M["auth.login"].writes)
    assert.is_nil(M["task.getList"].writes)
    assert.is_nil(M["user.actionsAdded"].writes)
    assert.is_true(M["handbook.addRecord"].writes)
    assert.is_true(M["handbook.updateRecord"].writes)
    assert.is_true(M["file.upload"].writes)
    assert.is_true(M["contact.managePlanfixAccess"].writes)
    assert.same({ root = "tasks", item = "task", list = true, paged = true, counts = "both", group = "task" },
      M["task.getList"])
    assert.same({ root = "records", item = "record", list = true, paged = true, counts = "none", group = "handbook" },
      M["handbook.getRecords"])
  end)

  it("nested_lists covers the repeated containers of the §1.9 parameter shapes", function()
    local N = T.nested_lists
    for k, v in pairs(N) do
      assert.is_string(k); assert.is_string(v)
    end
    local s = section(facts, "### 1.9")
    -- containers whose repeated item is an object; id/key lists and the
    -- request-only filters/fields are not response shapes
    local REQUEST_ONLY = { filters = true, fields = true }
    local seen = 0
    for container, item in s:gmatch("(%w+)%.(%w+)\\%*") do
      if item ~= "id" and item ~= "key" and not REQUEST_ONLY[container] then
        seen = seen + 1
        assert.equal(item, N[container], container)
      end
    end
    assert.is_true(seen >= 6)
    assert.equal("customValue", N.customData)
    assert.equal("phone", N.phones)
    assert.equal("itemData", N.analiticData)
  end)

  it("the source lists the methods one a line, sorted by name", function()
    local src = slurp(METHODS_SRC)
    local names = {}
    for line in src:gmatch("[^\n]+") do
      local name = line:match('^    %["([%w.]+)"%]%s+= {')
      if name then names[#names + 1] = name end
    end
    assert.equal(79, #names)
    for i = 2, #names do
      assert.is_true(names[i - 1] < names[i], names[i - 1] .. " before " .. names[i])
    end
    -- It says where the list comes from: the vendor's documentation by name
    -- (issue 15: no comment points to a file outside the repository).
    assert.is_truthy(src:find("Planfix's XML API documentation (its method list", 1, true))
  end)

  it("loads as plain data without 5.3+ syntax", function()
    local src = slurp(METHODS_SRC)
    assert.is_falsy(src:find("//", 1, true))
    assert.is_falsy(src:find("<const>", 1, true))
    assert.is_falsy(src:find("goto", 1, true))
    assert.is_function(load(src))
  end)
end)

describe("planfix_xml_errors", function()
  local E = require "planapi.planfix_xml.errors"

  it("the facts table parses to the expected codes", function()
    assert.equal(101, doc_code_count)
    assert.is_truthy(doc_codes["0016"])
    assert.is_truthy(doc_codes["10004"])
    assert.is_nil(doc_codes["0025"])
  end)

  it("has every code of §1.10 (ranges expanded) and nothing else", function()
    local missing, extra = {}, {}
    for code in pairs(doc_codes) do
      if not E[code] then missing[#missing + 1] = code end
    end
    for code in pairs(E) do
      if not doc_codes[code] then extra[#extra + 1] = code end
    end
    table.sort(missing); table.sort(extra)
    assert.same({}, missing)
    assert.same({}, extra)
  end)

  it("each code keeps its class column and its own meaning", function()
    for _, code in ipairs(keys(doc_codes)) do
      local e, d = E[code], doc_codes[code]
      assert.is_table(e, code)
      assert.equal(d.class, e.class, code)
      assert.is_string(e.meaning, code)
      local found = false
      for w in d.meaning:gmatch("%a%a%a%a+") do
        if e.meaning:lower():find(w:lower(), 1, true) then found = true end
      end
      assert.is_true(found, code .. ": '" .. e.meaning .. "' vs '" .. d.meaning .. "'")
    end
  end)

  it("classifies the explicitly named codes", function()
    local want = {
      ["0005"] = "reauth", ["0012"] = "reauth", ["0007"] = "quota",
      ["0011"] = "retry", ["3014"] = "retry", ["9007"] = "retry",
      ["0001"] = "config", ["0002"] = "config", ["0004"] = "config",
      ["0010"] = "config", ["0022"] = "config", ["0024"] = "config",
      ["0003"] = "caller", ["0008"] = "caller", ["0101"] = "caller",
    }
    for code, class in pairs(want) do assert.equal(class, E[code].class, code) end
    for code, e in pairs(E) do
      assert.is_truthy(({ config = 1, reauth = 1, quota = 1, retry = 1, caller = 1 })[e.class], code)
    end
  end)
end)
