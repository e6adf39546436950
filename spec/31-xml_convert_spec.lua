-- XML conversion in the C core: request encoding, the signature, and
-- lossless response decoding. Pure: no sandbox needed.
local core = require "planapi.core"
local planapi = require "planapi"

local KEY = "k3y-Private_0123" -- the made-up key of api-facts §1.4

-- Signature vectors: request XML -> the string hashed (before the key) and
-- the md5. 1-3 are the worked examples of api-facts §1.4; the others were
-- computed with tools/xml_signature_reference.py, an independent Python
-- (ElementTree) implementation that reproduces 1-3.
local VECTORS = {
  { "documented: auth.login",
    '<request method="auth.login"><account>acme</account><password>Secr3t!</password><login>ivan.petrov</login></request>',
    "auth.loginacmeivan.petrovSecr3t!", "3118aa3705a0a1eca90a8307c5668802" },
  { "documented: task.getList in login mode, byte-order sort",
    '<request method="task.getList"><account>acme</account><sid>7f1c2a9be0d44c3f8a5b6e7d9c0b1a23</sid>'
      .. '<target>in</target><pageSize>100</pageSize><pageCurrent>2</pageCurrent><sort>NUMBER_DESC</sort></request>',
    "task.getListacme21007f1c2a9be0d44c3f8a5b6e7d9c0b1a23NUMBER_DESCin", "c34e04fe501fcbb5c1d22e6d8d16c2e1" },
  { "documented: nested, repeated in document order, attribute-only leaf, empty element",
    '<request method="task.update"><account>acme</account><silent>1</silent><task><id>1001</id><title>Fix pump</title>'
      .. '<description></description><workers><users><id>7</id><id>3</id></users></workers><customData><customValue>'
      .. '<id>42</id><value>B</value></customValue><customValue><id>17</id><value>A</value></customValue></customData>'
      .. '<periodicity unset="1"/></task></request>',
    "task.updateacme142B17A10011Fix pump73", "6887b4c102a05cfae66005db13abc2b7" },
  { "Cyrillic",
    '<request method="task.add"><account>acme</account><task><title>Починить насос</title>'
      .. '<description>Срочно — к 12:00</description></task></request>',
    "task.addacmeСрочно — к 12:00Починить насос", "8a2444f4f601c5e37c8674425c096606" },
  { "XML entities and character references are decoded",
    '<request method="task.add"><account>acme</account><task><title>A &amp; B &lt;C&gt; "q" &#1055;</title></task></request>',
    'task.addacmeA & B <C> "q" П', "940fcc53c3eb251982a275bdb8f2d16d" },
  { "empty elements give nothing; leading zeros stay",
    '<request method="task.update"><account>acme</account><task><id>5</id><description/><title></title>'
      .. '<owner><id>0007</id></owner></task></request>',
    "task.updateacme50007", "58cc44c987567fe18ff108a52268c582" },
  { "attributes of an element with children come first",
    '<request method="task.get"><account>acme</account><task a="x" b="y"><id>1</id></task></request>',
    "task.getacmexy1", "8091e55d775ae714bdd82c49c6ec1fc7" },
  { "a leaf's attributes are ignored when it has text, used when it is blank",
    '<request method="task.update"><account>acme</account><task><id>2</id><value unset="9">text</value>'
      .. '<periodicity unset="1">   </periodicity></task></request>',
    "task.updateacme21text", "eea852002e99803982fbfdbd750f4428" },
  { "a stable sort: repeated names keep document order around others",
    '<request method="x.y"><account>acme</account><users><id>3</id><name>x</name><id>1</id></users></request>',
    "x.yacme31x", "c8fbba2e0ce7ae7ac96a1226d85e748b" },
  { "byte order: upper case, then underscore, then lower case",
    '<request method="x.y"><b>1</b><B>2</B><_a>3</_a><a>4</a><account>acme</account></request>',
    "x.y234acme1", "ab3f77fece7230283372592e835715a3" },
  { "an existing <signature> is left out",
    '<request method="task.get"><account>acme</account><task><id>1</id></task>'
      .. '<signature>0123456789abcdef0123456789abcdef</signature></request>',
    "task.getacme1", "2f11dfb55ca4749fc3d538e80aff5ae2" },
  { "deep nesting with repeated groups",
    '<request method="action.add"><account>acme</account><action><analitics><analitic><id>5</id><analiticData>'
      .. '<itemData><fieldId>1</fieldId><value>a</value></itemData><itemData><fieldId>2</fieldId><value>b</value>'
      .. '</itemData></analiticData></analitic></analitics><description>Готово</description><task><id>9</id></task>'
      .. '</action></request>',
    "action.addacme1a2b5Готово9", "ead877e12166b5948ed8fac41c547e24" },
}

describe("XML request signature", function()
  for _, v in ipairs(VECTORS) do
    it(v[1], function()
      assert.equal(v[3], core.xml_sign_string(v[2]))
      assert.equal(v[4], core.xml_signature(v[2], KEY))
    end)
  end

  it("signs what the encoder writes, and places <signature> last", function()
    local xml = core.xml_encode("task.get", { account = "acme", task = { id = 1 } }, KEY)
    assert.matches("<signature>2f11dfb55ca4749fc3d538e80aff5ae2</signature></request>$", xml)
    -- The same request written by hand in another order signs the same.
    assert.equal(core.xml_signature('<request method="task.get"><task><id>1</id></task><account>acme</account></request>', KEY),
      xml:match "<signature>(%x+)</signature>")
  end)

  it("refuses to sign what is not a request", function()
    assert.has_error(function() core.xml_signature("<response/>", KEY) end)
    assert.has_error(function() core.xml_signature("not xml", KEY) end)
  end)
end)

describe("XML request encoding", function()
  local function body(xml) return xml:match "<request[^>]*>(.*)</request>$" end

  it("writes the envelope, sorted children, repeated elements and booleans", function()
    local xml = core.xml_encode("task.update", {
      account = "acme", silent = true,
      task = { id = 1, workers = { users = { id = { 1, 2 } } }, hidden = false },
    })
    assert.matches('^<%?xml version="1.0" encoding="UTF%-8"%?>\n<request method="task.update">', xml)
    assert.equal("<account>acme</account><silent>1</silent><task><hidden>0</hidden><id>1</id>"
      .. "<workers><users><id>1</id><id>2</id></users></workers></task>", body(xml))
  end)

  it("repeats tables in array order and keeps their own children sorted", function()
    local xml = core.xml_encode("x.y", { customData = { customValue = { { value = "B", id = 42 }, { id = 17, value = "A" } } } })
    assert.equal("<customData><customValue><id>42</id><value>B</value></customValue>"
      .. "<customValue><id>17</id><value>A</value></customValue></customData>", body(xml))
  end)

  it("writes attributes from @ keys and text from #text", function()
    local xml = core.xml_encode("x.y", { periodicity = { ["@unset"] = 1 }, v = { ["@a"] = 'q"<', ["#text"] = "t" } })
    assert.equal('<periodicity unset="1"></periodicity><v a="q&quot;&lt;">t</v>', body(xml))
  end)

  it("escapes text, keeps UTF-8, and writes empty values as empty elements", function()
    local xml = core.xml_encode("x.y", { a = "A & B <C>", b = "Привет", c = "", d = planapi.null, e = {} })
    assert.equal("<a>A &amp; B &lt;C&gt;</a><b>Привет</b><c/><d/><e/>", body(xml))
  end)

  it("round-trips through the decoder", function()
    local params = { title = "x < y & z", list = { id = { "1", "2" } }, one = { id = "0005" } }
    local doc = assert(core.xml_decode(core.xml_encode("x.y", params)))
    assert.equal("x.y", doc["@method"])
    assert.equal(params.title, doc.title)
    assert.same({ "1", "2" }, doc.list.id)
    assert.equal("0005", doc.one.id)
  end)

  it("refuses names and values XML cannot carry", function()
    local function bad(params, pattern)
      local ok, err = pcall(core.xml_encode, "x.y", params)
      assert.is_false(ok)
      assert.equal("config", err.kind)
      if pattern then assert.matches(pattern, err.message) end
    end
    bad({ ["bad name"] = 1 }, "name")
    bad({ ["1st"] = 1 }, "name")
    bad({ a = "bell\7" }, "control")
    bad({ a = "\xff" }, "UTF%-8")
    bad({ a = { 1, x = 2 } }, "mixes")
    bad({ a = { { 1, 2 } } }, "array inside an array")
    bad({ a = function() end }, "function")
    bad({ [1] = "x" }, "names")
    bad({ a = { ["#txt"] = "typo" } }, "#text") -- would vanish from the request
    bad({ a = "\239\191\191" }, "U%+FFFF") -- valid UTF-8, not an XML character
    local t = {}
    t.t = t
    bad({ a = t }, "deep")
    assert.has_error(function() core.xml_encode("bad method", {}) end)
  end)
end)

describe("XML response decoding", function()
  local LISTS = { tasks = true, customData = true, users = true }

  local function decode(xml, lists)
    return assert(core.xml_decode('<?xml version="1.0" encoding="UTF-8"?>' .. xml, lists or LISTS))
  end

  it("keeps text as strings: leading zeros, long ids, codes", function()
    local d = decode('<response status="error"><code>0005</code><id>12345678901234567890</id></response>')
    assert.equal("error", d["@status"])
    assert.equal("0005", d.code)
    assert.equal("12345678901234567890", d.id)
  end)

  it("makes list containers arrays with 0, 1 or many items, keeping count and totalCount", function()
    local none = decode('<response status="ok"><tasks count="0" totalCount="23"/></response>')
    assert.equal(0, #none.tasks)
    assert.equal("0", none.tasks["@count"])
    assert.equal("23", none.tasks["@totalCount"])
    local one = decode('<response status="ok"><tasks count="1" totalCount="1"><task><id>7</id></task></tasks></response>')
    assert.equal(1, #one.tasks)
    assert.equal("7", one.tasks[1].id)
    local many = decode('<response status="ok"><tasks count="2"><task><id>1</id></task><task><id>2</id></task></tasks></response>')
    assert.equal(2, #many.tasks)
    assert.equal("2", many.tasks[2].id)
  end)

  it("treats any element with count or totalCount as a list, even when not named", function()
    local d = decode('<response status="ok"><statusList totalCount="1"><status><id>3</id></status></statusList></response>', {})
    assert.equal(1, #d.statusList)
    assert.equal("3", d.statusList[1].id)
  end)

  it("makes repeated siblings arrays and keeps a single one as it is", function()
    local d = decode('<response status="ok"><task><workers><group><id>1</id><id>2</id></group></workers>'
      .. '<auditors><group><id>5</id></group></auditors></task></response>')
    assert.same({ "1", "2" }, d.task.workers.group.id)
    assert.equal("5", d.task.auditors.group.id)
  end)

  it("keeps nested list containers arrays with one item", function()
    local d = decode('<response status="ok"><task><customData><customValue><id>1</id><value>x</value></customValue>'
      .. '</customData><workers><users/></workers></task></response>')
    assert.equal(1, #d.task.customData)
    assert.equal("x", d.task.customData[1].value)
    assert.equal(0, #d.task.workers.users)
  end)

  it("keeps attributes, text beside attributes, empty elements and entities", function()
    local d = decode('<response status="ok"><records><record><value value="v1" name="Имя" isDisplayed="1"/>'
      .. '<note lang="ru">Текст &amp; &lt;ещё&gt;</note><description/><blank></blank></record></records></response>',
      { records = true })
    local r = d.records[1]
    assert.same({ ["@value"] = "v1", ["@name"] = "Имя", ["@isDisplayed"] = "1" }, r.value)
    assert.same({ ["@lang"] = "ru", ["#text"] = "Текст & <ещё>" }, r.note)
    assert.equal("", r.description)
    assert.equal("", r.blank)
    -- entities and character references in attribute values too (found by fuzzing)
    assert.equal("A & B < C", decode('<r><v name="A &amp; B &#60; C"/></r>').v["@name"])
  end)

  it("writes nothing to stderr, even where libxml2 would (a failed encoding conversion)", function()
    local portable = require "portable"
    local script = os.tmpname()
    portable.write_file(script, [[
package.cpath = "./?.so;" .. package.cpath
local core = require "planapi.core"
local bad = '<?xml version="1.0" encoding="Shift_JIS"?><r>\129\032\255</r>'
assert(core.xml_decode(bad) == nil)
assert(not pcall(core.xml_sign_string, (bad:gsub("<r>", '<request method="a"><r>'):gsub("</r>$", "</r></request>"))))
io.write "done"
]])
    local out = portable.run("lua5.4 " .. script)
    os.remove(script)
    assert.equal("done", out)
  end)

  it("keeps CDATA text and converts a declared encoding to UTF-8", function()
    assert.equal("a<b", decode("<response><t><![CDATA[a<b]]></t></response>").t)
    local latin1 = '<?xml version="1.0" encoding="ISO-8859-1"?><r><t>caf\xe9</t></r>'
    assert.equal("café", assert(core.xml_decode(latin1)).t)
  end)

  it("refuses DTDs, external entities, parameter entities and entity bombs, quickly", function()
    local payloads = {
      '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
      '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><r/>',
      '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>',
      '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        .. '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>',
      "<r>&undefined;</r>",
    }
    local started = os.clock()
    for _, p in ipairs(payloads) do
      local v, err = core.xml_decode(p)
      assert.is_nil(v, p)
      assert.equal("decode", err.kind)
    end
    assert.is_true(os.clock() - started < 0.5)
  end)

  it("reports malformed, truncated and empty documents as decode errors", function()
    for _, bad in ipairs { "", "<r>", "<r><a></r>", "not xml", '<response status="ok"><tasks count="1">', "<a/><b/>" } do
      local v, err = core.xml_decode(bad)
      assert.is_nil(v, bad)
      assert.equal("decode", err.kind)
    end
  end)

  it("decodes a large list without losing an item", function()
    local parts = { '<response status="ok"><tasks count="3000" totalCount="3000">' }
    for i = 1, 3000 do parts[#parts + 1] = ("<task><id>%d</id><title>T%d</title></task>"):format(i, i) end
    parts[#parts + 1] = "</tasks></response>"
    local d = decode(table.concat(parts))
    assert.equal(3000, #d.tasks)
    assert.equal("3000", d.tasks[3000].id)
  end)
end)
