-- JSON exactly as the server sent it (issue 14 §2, §4, §3): decode then
-- encode gives the same bytes modulo key order for many random documents,
-- judged by python3's json module (an oracle that is not our code); every
-- decoded array carries the array mark, empty ones too; a null member of an
-- object is left out by default and kept with nulls = "keep"; NaN and
-- infinity have no query form.
local portable = require "portable"
local expect = require "expect"
local planapi = require "planapi"
local core = require "planapi.core"

-- A code point as UTF-8 (LuaJIT has no utf8 library).
local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

-- Random JSON text, written the way servers write it (and some ways they
-- might): whitespace anywhere, escapes (in names too), raw and escaped
-- unicode, empty arrays and objects with and without whitespace inside,
-- brackets inside strings, duplicate names, integers up to 2^53, fractions
-- and exponents. compact: no whitespace at all.
local function generator(seed, compact)
  math.randomseed(seed)
  local R = math.random
  local function ws()
    if compact then return "" end -- "name":null written as servers write it, which decode blanks
    local r = R(1, 6)
    if r == 1 then return " " elseif r == 2 then return "\n  " elseif r == 3 then return "\t" end
    return ""
  end
  local SIMPLE = { '\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "[]", "[ ]", "{}", "\\u005b\\u005d",
    [[\\\"]], "]", "[" }
  local function str()
    local parts, n = { '"' }, R(0, 8)
    for _ = 1, n do
      local r = R(1, 10)
      if r <= 3 then
        parts[#parts + 1] = string.char(R(0x61, 0x7A))
      elseif r == 4 then
        parts[#parts + 1] = SIMPLE[R(1, #SIMPLE)]
      elseif r == 5 then -- a control character, escaped
        parts[#parts + 1] = ("\\u%04x"):format(R(0, 0x1F))
      elseif r == 6 then -- raw two- and three-byte characters (Cyrillic, CJK)
        parts[#parts + 1] = utf8_char(R(1, 2) == 1 and R(0x410, 0x44F) or R(0x4E00, 0x9FFF))
      elseif r == 7 then -- an astral character, raw or as a surrogate pair
        local cp = R(0x10000, 0x10FFFF)
        if R(1, 2) == 1 then
          parts[#parts + 1] = utf8_char(cp)
        else
          local v = cp - 0x10000
          parts[#parts + 1] = ("\\u%04X\\u%04x"):format(0xD800 + math.floor(v / 1024), 0xDC00 + v % 1024)
        end
      elseif r == 8 then -- a BMP character escaped (not a surrogate)
        local cp = R(0x80, 0xD7FF)
        parts[#parts + 1] = ("\\u%04x"):format(cp)
      else
        parts[#parts + 1] = string.char(R(0x20, 0x7E)):gsub('[\\"]', "")
      end
    end
    parts[#parts + 1] = '"'
    return table.concat(parts)
  end
  local function int()
    local bits = R(0, 53)
    local n = math.floor(math.random() * 2 ^ bits)
    if R(1, 20) == 1 then n = 2 ^ 53 end
    return (R(1, 2) == 1 and "-" or "") .. ("%.0f"):format(n)
  end
  local function frac()
    local s = ("%d.%d"):format(R(0, 99999), R(1, 999)) -- never integral: 1.0 would come back as 1
    if s:sub(-1) == "0" then s = s .. "1" end
    if R(1, 3) == 1 then s = s .. (R(1, 2) == 1 and "e-" or "E+") .. R(1, 20) end
    return (R(1, 2) == 1 and "-" or "") .. s
  end
  local value
  local function array(depth)
    local n = R(0, 4)
    if n == 0 then return "[" .. ws() .. "]" end
    local items = {}
    for i = 1, n do items[i] = ws() .. value(depth + 1) .. ws() end
    return "[" .. table.concat(items, ",") .. "]"
  end
  local function object(depth)
    local n = R(0, 4)
    if n == 0 then return "{" .. ws() .. "}" end
    local items, seen, keys = {}, {}, {}
    for i = 1, n do
      local k
      if #keys > 0 and R(1, 8) == 1 then
        k = keys[R(1, #keys)] -- a duplicate name: the last one wins, in cjson and in python
      else
        repeat k = str() until not seen[k]
        seen[k] = true
        keys[#keys + 1] = k
      end
      items[i] = ws() .. k .. ws() .. ":" .. ws() .. value(depth + 1) .. ws()
    end
    return "{" .. table.concat(items, ",") .. "}"
  end
  function value(depth)
    local r = R(1, depth > 5 and 8 or 11)
    if r == 1 then return "null" elseif r == 2 then return "true" elseif r == 3 then return "false"
    elseif r == 4 then return int() elseif r == 5 then return frac()
    elseif r <= 8 then return str()
    elseif r <= 10 then return array(depth) end
    return object(depth)
  end
  return function() return ws() .. (R(1, 2) == 1 and object(0) or array(0)) .. ws() end
end

-- python3's verdict on each (input, ours, our count of marked tables): both
-- parsed, both dumped with
-- sorted keys, integral numbers as integers; mode "absent" also removes
-- null members of objects from the input (the documented default). Prints "ok N" or the first mismatch.
local ORACLE = [[
import json, sys
def norm(v, nulls):
    # JSON has one number type: 78086.328E+9 and 78086328000000 are the
    # same number, which planapi decodes to a Lua integer and sends as such.
    if isinstance(v, float) and v.is_integer() and abs(v) <= 2 ** 53:
        return int(v)
    if isinstance(v, dict):
        return {k: norm(x, nulls) for k, x in v.items() if nulls or x is not None}
    if isinstance(v, list):
        return [norm(x, nulls) for x in v]
    return v
def canon(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
def arrays(v):
    if isinstance(v, dict):
        return sum(arrays(x) for x in v.values())
    if isinstance(v, list):
        return 1 + sum(arrays(x) for x in v)
    return 0
parts = open(sys.argv[1], "rb").read().decode("utf-8").split("\0")
n = 0
for i in range(0, len(parts) - 1, 4):
    mode, doc, ours, marked = parts[i], parts[i + 1], parts[i + 2], int(parts[i + 3])
    want = norm(json.loads(doc), mode == "keep")
    if canon(want) != canon(norm(json.loads(ours), True)):
        print("MISMATCH", mode, repr(doc), repr(ours))
        sys.exit(1)
    if marked != arrays(want):
        print("MARKS", mode, marked, arrays(want), repr(doc))
        sys.exit(1)
    n += 1
print("ok", n)
]]

-- How many tables carry the array mark (python counts the arrays); a table
-- without it must have no items.
local function marked(v)
  if type(v) ~= "table" then return 0 end
  local n = planapi.is_array(v) and 1 or 0
  assert(n == 1 or v[1] == nil, "an array without the mark")
  for _, x in pairs(v) do n = n + marked(x) end
  return n
end

describe("JSON decode then encode", function()
  local dir
  setup(function() dir = portable.tmpdir() end)
  teardown(function() portable.rmtree(dir) end)

  it("gives the same bytes modulo key order for 1000 random documents, every array marked (python3 judges)", function()
    -- PLANAPI_SPEC_SEED=n explores other documents.
    local next_doc = generator(tonumber(os.getenv "PLANAPI_SPEC_SEED") or 20261206)
    local out, count = {}, 0
    for _ = 1, 500 do
      local doc = next_doc()
      for _, mode in ipairs { "keep", "absent" } do
        local v, err = planapi.json.decode(doc, { nulls = mode })
        assert(v ~= nil, tostring(err) .. "\n" .. doc)
        out[#out + 1] = mode .. "\0" .. doc .. "\0" .. planapi.json.encode(v) .. "\0" .. marked(v)
        count = count + 1
      end
    end
    portable.write_file(dir .. "/pairs", table.concat(out, "\0") .. "\0")
    portable.write_file(dir .. "/oracle.py", ORACLE)
    local verdict, code = portable.run(("python3 %s/oracle.py %s/pairs"):format(dir, dir))
    assert.equal(0, code, verdict)
    assert.equal("ok " .. count, verdict:match "^(ok %d+)")
  end)

  it("decodes the same through client:decode (its cached decoder) as through json.decode, for 500 random documents", function()
    -- client:decode keeps cjson's decode and the array metatable as upvalues;
    -- json.decode looks them up by name. The test above has python3 judge
    -- json.decode; this one holds client:decode to the same answers.
    local client = core.client { base_url = "https://example.test/" }
    local next_doc = generator(tonumber(os.getenv "PLANAPI_SPEC_SEED") or 20261207)
    for _ = 1, 250 do
      local doc = next_doc()
      for _, mode in ipairs { "keep", "absent" } do
        local want = planapi.json.decode(doc, { nulls = mode })
        local got = assert(client:decode({ status = 200, body = doc, headers = {} }, mode))
        assert.equal(planapi.json.encode(want), planapi.json.encode(got), doc)
        assert.equal(marked(want), marked(got), doc)
      end
    end
    -- Only a client passes its check: a table, or another kind of userdata, is refused as before.
    for _, other in ipairs { {}, io.stdout } do
      local ok, err = pcall(client.decode, other, { status = 200, body = "{}" })
      assert.is_false(ok)
      assert.matches("planapi.client expected", tostring(err), 1, true)
    end
    client:close()
  end)

  it("marks every decoded array, empty ones too, and no object", function()
    local v = planapi.json.decode(' { "a" : [ ] , "b" : {}, "c" : [ [ ], { "d": [\n] } ], "e": "[ ]" } ')
    assert.is_true(planapi.is_array(v.a))
    assert.is_false(planapi.is_array(v.b))
    assert.is_true(planapi.is_array(v.c))
    assert.is_true(planapi.is_array(v.c[1]))
    assert.is_false(planapi.is_array(v.c[2]))
    assert.is_true(planapi.is_array(v.c[2].d))
    assert.equal("[ ]", v.e)
    assert.equal(0, #v.a)
    assert.is_true(planapi.is_array(planapi.json.decode "[]"))
    assert.is_true(planapi.is_array(planapi.json.decode " [ ] "))
    assert.equal('{"a":[],"b":{},"c":[[],{"d":[]}],"e":"[ ]"}', planapi.json.encode(v))
  end)

  it("never takes a number the server sent for an empty array", function()
    -- Empty arrays stand in as -0 unless the document may hold a -0 of its own.
    for _, text in ipairs { "[[],-0,[ ]]", "[[],-0.0,[]]", "[[],-1e-400,[]]", "[[],-0e3,[ ]]" } do
      local v = assert(core.json_decode(text), text)
      assert.equal("table", type(v[1]), text)
      assert.is_true(planapi.is_array(v[1]))
      assert.equal("number", type(v[2]), text)
      assert.equal(0, v[2], text)
      assert.is_true(planapi.is_array(v[3]))
    end
    local mixed = '{"a":[],"b":-0.5,"c":[1,[]]}'
    assert.equal(mixed, planapi.json.encode(planapi.json.decode(mixed)))
  end)

  it("never takes a string the server sent for an empty array", function()
    -- With an empty object and a -0 in the document, empty arrays stand in
    -- as a string of one byte that is never UTF-8: the one the document does
    -- not hold, or the decode refuses; never a string lost.
    local chars = {}
    for b = 0xF8, 0xFE do chars[#chars + 1] = '"' .. string.char(b) .. '"' end
    local v = assert(core.json_decode("[[],{},-0," .. table.concat(chars, ",") .. "]"))
    assert.equal(0, #v[1])
    assert.is_true(planapi.is_array(v[1]))
    assert.is_false(planapi.is_array(v[2]))
    for i = 4, 10 do assert.equal(string.char(0xF8 + i - 4), v[i]) end
    chars[#chars + 1] = '"\255"'
    local nothing, err = core.json_decode("[[],{},-0," .. table.concat(chars, ",") .. "]")
    assert.is_nil(nothing)
    assert.equal("decode", err.kind)
    -- Without an empty object there is no stand-in: the same bytes decode.
    v = assert(core.json_decode("[[],-0," .. table.concat(chars, ",") .. "]"))
    assert.is_true(planapi.is_array(v[1]))
    assert.equal(0, #v[1])
    assert.equal("\255", v[10])
    -- Without an empty array, such bytes decode as before.
    assert.equal("\255", core.json_decode('["\255"]')[1])
  end)

  it("finds every empty array of a document with many of them", function()
    -- Each way: no stand-in (no empty object; one only inside a string),
    -- -0 (an empty object), a sentinel string (an empty object and an
    -- exponent).
    for _, lead in ipairs { "", '"{}",', "{ },", "{},-1e2," } do
      local parts = {}
      for i = 1, 150 do parts[i] = i % 3 == 0 and '{"k":[ ]}' or "[]" end
      local text = "[" .. lead .. table.concat(parts, ",") .. "]"
      local v = assert(core.json_decode(text))
      local want = text:gsub("%[ %]", "[]"):gsub("{ }", "{}"):gsub("%-1e2,", "-100,")
      assert.equal(want, core.json_encode(v))
    end
  end)

  it("tells an empty array from an empty object when either is only inside a string", function()
    local v = assert(core.json_decode('["[]",{},{"a":"{ }"},[ ]]'))
    assert.is_false(planapi.is_array(v[2]))
    assert.is_true(planapi.is_array(v[4]))
    assert.equal('["[]",{},{"a":"{ }"},[]]', core.json_encode(v))
    v = assert(core.json_decode('{"a":[],"b":"{}","c":{"d":"[]"}}'))
    assert.is_true(planapi.is_array(v.a))
    assert.equal('{"a":[],"b":"{}","c":{"d":"[]"}}', core.json_encode(v))
    v = assert(core.json_decode('{"a":{},"b":"[ ]"}'))
    assert.is_false(planapi.is_array(v.a))
    assert.equal('{"a":{},"b":"[ ]"}', core.json_encode(v))
  end)

  it("reports a cjson error for invalid JSON with an empty array in it", function()
    local v, err = core.json_decode('{"a":[],"b":}')
    assert.is_nil(v)
    assert.equal("decode", err.kind)
    assert.matches("invalid JSON", err.message)
    -- The offset and the token are cjson's for the text the server sent,
    -- whichever stand-in the empty arrays had.
    local cjson_decode = require("cjson").new().decode
    for _, text in ipairs { '{"a" []}', "[[] [] ]", "[[],{},-0,x]", '[[],{},-1e2,"\248",{"a" [ ]}]' } do
      local _, message = pcall(cjson_decode, text)
      v, err = core.json_decode(text)
      assert.is_nil(v)
      assert.equal("invalid JSON: " .. message, err.message)
    end
  end)
end)

-- The value with every null member of an object left out, in plain Lua.
local function without_null_members(v)
  if type(v) ~= "table" then return v end
  local out = planapi.is_array(v) and planapi.array() or {}
  for k, x in pairs(v) do
    if planapi.is_array(v) or x ~= planapi.null then out[k] = without_null_members(x) end
  end
  return out
end

describe("JSON null", function()
  it("blanks null members before cjson reads them only where the walk would drop them the same way", function()
    -- The default decode blanks most "name":null members out of a copy of
    -- the text; nulls = "keep" never does. The oracle: the kept value with
    -- null members removed here, for compact random documents (duplicate
    -- names, escaped names, objects of nulls only, nesting).
    for seed = 1, 40 do
      local next_doc = generator(seed, true)
      for _ = 1, 25 do
        local doc = next_doc()
        local want = without_null_members(assert(planapi.json.decode(doc, { nulls = "keep" })))
        local got = assert(planapi.json.decode(doc))
        assert.equal(planapi.json.encode(want), planapi.json.encode(got), doc)
        assert.equal(marked(want), marked(got), doc)
      end
    end
    -- Texts over 4 KiB are copied into a userdata rather than on the C stack.
    for seed = 41, 50 do
      local next_doc, docs, size = generator(seed, true), {}, 0
      repeat
        docs[#docs + 1] = next_doc()
        size = size + #docs[#docs]
      until size > 3 * 4096
      local doc = '{"a":null,"docs":[' .. table.concat(docs, ",") .. '],"z":null,"y":1}'
      local want = without_null_members(assert(planapi.json.decode(doc, { nulls = "keep" })))
      local got = assert(planapi.json.decode(doc))
      assert.equal(planapi.json.encode(want), planapi.json.encode(got))
      assert.equal(marked(want), marked(got))
      assert.is_nil(core.json_decode(doc:sub(1, -2)))
    end
    local items = {} -- no empty object, so no placeholder copy: blanked in a userdata
    for i = 1, 200 do items[i] = ('{"id":%d,"a":null,"list":[],"o":{"p":null,"q":"x"},"r":null}'):format(i) end
    local big = "[" .. table.concat(items, ",") .. "]"
    local got = assert(core.json_decode(big))
    assert.equal(planapi.json.encode(without_null_members(assert(core.json_decode(big, "keep")))),
      planapi.json.encode(got))
    assert.equal(200, #got)
    assert.is_true(planapi.is_array(got[200].list))
    assert.is_nil(got[200].o.p)
    local function decode(text) return assert(core.json_decode(text)) end
    -- With duplicate names the last one wins: a null after a value removes it.
    assert.is_nil(decode('{"a":1,"a":null}').a)
    assert.is_nil(decode('{"b":2,"a":1,"c":3,"a":null,"d":4}').a)
    assert.equal(1, decode('{"a":null,"a":1}').a)
    assert.is_nil(decode('{"\\u0061":1,"a":null}').a)
    assert.is_nil(decode('{"x":{"a":1},"a":null,"b":2}').a)
    assert.equal(1, decode('{"x":{"a":1},"a":null,"b":2}').x.a)
    -- An object of nulls only is still an object next to an empty array.
    local v = decode('{"e":[],"t":{"a":null,"b":null},"u":{"c":null}}')
    assert.is_true(planapi.is_array(v.e))
    assert.is_false(planapi.is_array(v.t))
    assert.is_nil(next(v.t))
    assert.is_false(planapi.is_array(v.u))
    assert.equal('{"e":[],"t":{},"u":{}}', planapi.json.encode(v))
    -- The same scan tells the empty arrays from the empty objects, strings aside.
    v = decode('{"a":null,"b":[ ],"c":"{}","d":1}')
    assert.is_true(planapi.is_array(v.b))
    v = decode('{"a":null,"b":{\n},"c":"[]","d":1}')
    assert.is_false(planapi.is_array(v.b))
    v = decode('{"a":null,"b":[],"c":{ },"d":1}')
    assert.is_true(planapi.is_array(v.b))
    assert.is_false(planapi.is_array(v.c))
    -- Text that is not JSON stays refused, with cjson's word on the text itself.
    local cjson_decode = require("cjson").new().decode
    for _, text in ipairs { '{"a":null,}', '{,"a":null}', '{,"a":null,"b":1}', '[1,"a":null,"b"]',
      '[1,"a":null]', '{"a":null,"b":null,}', '{"a":1,,"b":null}', '{"x":1 "a":null}', '{"a":null,"b"}',
      '{"x":1,"a\0b":null,"y":2}', '{"x":1,"a\0b":null}' } do -- cjson ends the text at a NUL byte in a string
      local nothing, err = core.json_decode(text)
      assert.is_nil(nothing, text)
      local _, message = pcall(cjson_decode, text)
      assert.matches(message, err.message, 1, true)
    end
  end)

  it("is left out of an object by default, kept in arrays, kept as planapi.null on request", function()
    local text = '{"a":null,"b":{"c":null,"d":1},"list":[null,{"e":null}]}'
    local v = planapi.json.decode(text)
    assert.is_nil(v.a)
    assert.is_nil(v.b.c)
    assert.equal(planapi.null, v.list[1]) -- positions in an array matter
    assert.is_nil(v.list[2].e)
    assert.equal('{"b":{"d":1},"list":[null,{}]}', planapi.json.encode(v))
    local kept = planapi.json.decode(text, { nulls = "keep" })
    assert.equal(planapi.null, kept.a)
    assert.equal(planapi.null, kept.b.c)
    assert.equal(text, planapi.json.encode(kept))
    assert.equal(planapi.null, planapi.json.decode "null")
  end)

  it("refuses an unknown nulls option", function()
    expect.raises_config(function() planapi.json.decode("{}", { nulls = "drop" }) end, "nulls")
    expect.raises_config(function() planapi.planado { api_key = "k", nulls = "nil" } end, "nulls")
    expect.raises_config(function() planapi.planado_webhook { secret = "s", nulls = true } end, "nulls")
    -- A misspelt option is a config error, as for clients and pagers, not the default in silence.
    expect.raises_config(function() planapi.json.decode("{}", { null = "keep" }) end, "'null'")
    expect.raises_config(function() planapi.json.decode("{}", { [1] = "keep" }) end, "nulls")
  end)
end)

describe("query encoding of numbers", function()
  it("refuses NaN and infinity with a config error naming the parameter", function()
    local err = expect.raises_config(function() core.encode_query { offset = 0 / 0 } end, "offset")
    assert.matches("NaN", err.message)
    err = expect.raises_config(function() core.encode_query { pageSize = 1 / 0 } end, "pageSize")
    assert.matches("infinite", err.message)
    expect.raises_config(function() core.encode_query { ids = { 1, -1 / 0 } } end, "ids")
    expect.raises_config(function() core.url_escape(0 / 0) end, "NaN")
  end)

  it("writes numbers beyond the integer range without an undefined cast", function()
    -- UBSan (make sanitize) reported 1e300 here; the text is also checked.
    assert.equal("a=1e%2B300", core.encode_query { a = 1e300 })
    assert.equal("a=-1e%2B300", core.encode_query { a = -1e300 })
    assert.equal("a=9007199254740992", core.encode_query { a = 2 ^ 53 })
    assert.equal("a=0.1", core.encode_query { a = 0.1 })
    assert.equal("a=42", core.encode_query { a = 42.0 })
  end)

  it("refuses NaN in a REST query before anything is sent", function()
    local sent = false
    local rest = planapi.planfix_rest { base_url = "https://127.0.0.1:1/rest/", token = "t", rate = false,
      transport = function() sent = true end }
    expect.raises_config(function() rest:call("get-task-by-id", { id = 1 }, { query = { x = 0 / 0 } }) end, "'x'")
    assert.is_false(sent)
  end)
end)
