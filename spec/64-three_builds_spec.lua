-- The three builds of the C core (Lua 5.4: make; LuaJIT: make LUA=luajit; Lua 5.3:
-- make LUA=lua5.3) come from the same sources and must agree: each loads under its own
-- interpreter, and on the same random inputs (byte strings, JSON texts with every kind of
-- number, empty arrays and objects, bad JSON) gives the same results. The oracle for Lua 5.3
-- is the Lua 5.4 build, whose results the rest of the suite judges against servers and
-- Python; both have integers, so their decoded values must match to the number's subtype.
-- LuaJIT has no integer subtype (and keeps a decoded -0 as -0), so it is held to the same
-- results on everything but JSON numbers. Each build runs in a child process
-- (spec/helpers/builds_probe.lua): a spec runs under one interpreter only.
local portable = require "portable"

local BUILDS = {
  { lua = "lua5.4", cpath = "./?.so", make = "make" },
  { lua = "lua5.3", cpath = "build/lua5.3/?.so", make = "make LUA=lua5.3" },
  { lua = "luajit", cpath = "build/luajit/?.so", make = "make LUA=luajit" },
}

local function lua_string(s)
  return '"' .. s:gsub(".", function(c) return ("\\%03d"):format(c:byte()) end) .. '"'
end

-- A float literal every interpreter reads back to the same double.
local function float_literal(x)
  if x ~= x then return "(0/0)" end
  if x == math.huge then return "math.huge" end
  if x == -math.huge then return "-math.huge" end
  local s = ("%.17g"):format(x)
  if not s:find "[.eEn]" then s = s .. ".0" end
  return s
end

local function random_bytes(n)
  local t = {}
  for i = 1, n do t[i] = string.char(math.random(0, 255)) end
  return table.concat(t)
end

-- Bytes that need escaping somewhere, and brackets that look like empty arrays and objects
-- inside strings (the JSON decoder tells those from real ones).
local PIECES = { "é", "Задача", "媢", "\u{1F600}", "\\", "\"", "/", "%", "&", "=", "+", " ", "\0", "\t", "[]", "{}",
  "[ ]", "-0" }
local function random_text()
  local t = {}
  for i = 1, math.random(0, 12) do
    t[i] = math.random(3) == 1 and PIECES[math.random(#PIECES)] or string.char(math.random(32, 126))
  end
  return table.concat(t)
end

local NUMBERS = { "0", "-0", "1", "-1", "2.0", "1e2", "1E-2", "-0.0", "0.1", "123456789012", "9007199254740993",
  "9223372036854775807", "-9223372036854775808", "18446744073709551616", "1.5e300", "1e-400", "3.25",
  "-12.5e-3", "4.0e0" }

local function random_json(depth)
  local r = math.random(depth > 2 and 4 or 7)
  if r == 1 then return NUMBERS[math.random(#NUMBERS)] end
  if r == 2 then return '"' .. random_text():gsub('[%c\\"]', "") .. '"' end
  if r == 3 then return ({ "true", "false", "null" })[math.random(3)] end
  if r == 4 then return tostring(math.random(-1000000, 1000000)) end
  local items = {}
  for i = 1, math.random(0, 4) do
    local v = random_json(depth + 1)
    items[i] = r == 5 and v or ('"k%d"%s:%s'):format(i, math.random(2) == 1 and " " or "", v)
  end
  if r == 5 then return "[" .. table.concat(items, ",") .. "]" end
  if r == 6 then return "{" .. table.concat(items, ",") .. "}" end
  return ({ "[]", "[ ]", "{}", "[\n]" })[math.random(4)]
end

-- The inputs as a Lua file every interpreter reads the same way (bytes as \ddd).
local function write_inputs(path)
  local strings, json, numbers = {}, {}, {}
  for i = 1, 200 do strings[i] = lua_string(i % 2 == 0 and random_bytes(math.random(0, 40)) or random_text()) end
  for i = 1, 300 do json[i] = lua_string(random_json(0)) end
  for _, bad in ipairs { "[1,", "{\"a\":}", "", "nul", "[1]x", "\"\\ud800\"", "[[[]]", "{\"a\":[]}}" } do
    json[#json + 1] = lua_string(bad)
  end
  for i = 1, 200 do
    local x = math.random() * 10 ^ math.random(-20, 20) * (math.random(2) == 1 and -1 or 1)
    numbers[i] = i % 4 == 0 and float_literal(math.floor(x)) or float_literal(x)
  end
  portable.write_file(path, ("return { strings = { %s },\n json = { %s },\n numbers = { %s } }\n"):format(
    table.concat(strings, ",\n"), table.concat(json, ",\n"), table.concat(numbers, ", ")))
end

local function probe(build, inputs, dir)
  assert(portable.read_file(build.cpath:gsub("%?", "planapi/core")), "run " .. build.make .. " first")
  local out = ("%s/%s.out"):format(dir, build.lua)
  local text, code = portable.run(("%s spec/helpers/builds_probe.lua %q %q %q"):format(build.lua, build.cpath,
    inputs, out))
  assert.equal(0, code, build.lua .. " (" .. build.make .. "): " .. text)
  return portable.lines(assert(portable.read_file(out)))
end

describe("the three builds", function()
  local dir, results, seed

  setup(function()
    seed = os.time()
    math.randomseed(seed)
    dir = portable.tmpdir()
    write_inputs(dir .. "/inputs.lua")
    results = {}
    for _, build in ipairs(BUILDS) do results[build.lua] = probe(build, dir .. "/inputs.lua", dir) end
  end)

  teardown(function() if dir then portable.rmtree(dir) end end)

  -- The first line that differs, for the failure message.
  local function first_difference(a, b, keep)
    local n = 0
    for i = 1, math.max(#a, #b) do
      if keep == nil or keep(a[i] or b[i]) then
        n = n + 1
        if a[i] ~= b[i] then
          return ("line %d (seed %d):\n  %s\n  %s"):format(i, seed, tostring(a[i]), tostring(b[i]))
        end
      end
    end
    return nil, n
  end

  it("Lua 5.3 and Lua 5.4 give the same results, to the subtype of every decoded number", function()
    local diff, compared = first_difference(results["lua5.4"], results["lua5.3"])
    assert.is_nil(diff, diff)
    assert.is_true(compared > 1500, "too few results compared: " .. tostring(compared))
  end)

  it("LuaJIT gives Lua 5.4's results on everything but JSON numbers", function()
    local function not_json(line) return not line:find "^json" end
    local diff, compared = first_difference(results["lua5.4"], results["luajit"], not_json)
    assert.is_nil(diff, diff)
    assert.is_true(compared >= 1200, "too few results compared: " .. tostring(compared))
  end)

  it("the results are not all alike (the probe can tell inputs apart)", function()
    local seen, distinct = {}, 0
    for _, line in ipairs(results["lua5.3"]) do
      local what = line:match "^(%S+ %d+) " and line:gsub("^%S+ %d+ ", "")
      if what and not seen[what] then seen[what], distinct = true, distinct + 1 end
    end
    assert.is_true(distinct > 1000, "distinct results: " .. distinct)
  end)
end)

-- Where the interpreters' own libraries differ: Lua 5.3's utf8.len takes an encoded surrogate
-- (ED A0 80) for UTF-8, Lua 5.4's does not, LuaJIT has no utf8 library. A cassette must keep a
-- body as text only when the core's JSON encoder will take it, under each of them.
describe("a cassette under this interpreter", function()
  local cassette = require "planapi.testing.cassette"
  local core = require "planapi.core"

  it("keeps a body the JSON encoder refuses in base64 and plays it back byte for byte", function()
    local dir = portable.tmpdir()
    local path = dir .. "/bodies.cassette.json"
    local bodies = { "\237\160\128", "a\237\191\191b", "\224\128\175", "\192\175", "\244\144\128\128",
      "\248\136\128\128\128", "\255", "text é Задача \240\159\152\128", "" }
    local rec = cassette.record(path, { mask = false })
    local echo = rec:transport(function(req) return { status = 200, headers = {}, body = req.body } end)
    for i, body in ipairs(bodies) do
      local res, err = echo { method = "POST", url = "https://example.test/" .. i, headers = {}, body = body }
      assert.is_table(res, tostring(err))
    end
    assert.is_nil(rec.save_error)
    local tape = cassette.replay(path):transport()
    local text = assert(portable.read_file(path))
    portable.rmtree(dir)
    for i, body in ipairs(bodies) do
      local res = assert(tape { method = "POST", url = "https://example.test/" .. i, headers = {}, body = body })
      assert.equal(body, res.body, "body " .. i)
      -- the oracle for "text": the encoder itself
      local as_text = pcall(core.json_encode, body)
      assert.equal(not as_text, text:find(core.base64(body), 1, true) ~= nil and body ~= "", "body " .. i)
    end
  end)
end)
