-- The Planfix XML client against the sandbox: both auth modes, sessions,
-- signatures, conversion of real answers, paging, every error class.
local core = require "planapi.core"
local sandbox = require "sandbox"

local seen_errors = {}
local function keep(err)
  if err ~= nil then seen_errors[#seen_errors + 1] = err end
  return err
end

describe("Planfix XML client", function()
  before_each(function() sandbox.reset() end)

  describe("token mode", function()
    it("sends Basic api_key:token, the account and no sid", function()
      local xml = sandbox.xml()
      local task = assert(xml.task:get { id = 1 })
      assert.equal("1", task.id)
      local e = sandbox.xml_log()[1]
      assert.equal("Basic " .. core.base64("sandbox-api-key:sandbox-xml-token"), e.headers.authorization)
      assert.equal("task.get", e.xml_method)
      assert.equal("sandbox", e.xml.account)
      assert.is_nil(e.xml.sid)
      assert.matches("^application/xml", e.headers["content-type"])
    end)

    it("an unknown token is an auth error saying so", function()
      local v, err = sandbox.xml({ token = "no-such-token" }):call("task.get", { task = { id = 1 } })
      assert.is_nil(v)
      assert.equal("auth", keep(err).kind)
      assert.equal("0012", err.code)
      assert.matches("token does not exist", err.message)
    end)

    it("a wrong API key is an auth error (0001), an unknown account a config error (0004)", function()
      local _, err = sandbox.xml({ api_key = "wrong-api-key" }):call("task.get", { task = { id = 1 } })
      assert.equal("auth", keep(err).kind)
      assert.equal("0001", err.code)
      _, err = sandbox.xml({ account = "nobody" }):call("task.get", { task = { id = 1 } })
      assert.equal("config", keep(err).kind)
      assert.equal("0004", err.code)
    end)
  end)

  describe("login mode", function()
    it("logs in lazily once and puts the sid in every body", function()
      local xml = sandbox.xml { login = true }
      for _ = 1, 3 do assert(xml.task:get { id = 1 }) end
      assert.equal(1, sandbox.stats().xml_logins)
      local log = sandbox.xml_log()
      assert.equal(4, #log)
      assert.equal("auth.login", log[1].xml_method)
      assert.equal("Basic " .. core.base64("sandbox-api-key:"), log[1].headers.authorization)
      for i = 2, 4 do assert.equal(xml.sid, log[i].xml.sid) end
      assert.equal(32, #xml.sid)
    end)

    it("renews an expired session once and retries the request once", function()
      local xml = sandbox.xml { login = true }
      assert(xml.task:get { id = 1 })
      sandbox.control("POST", "xml/expire_sessions")
      local task = assert(xml.task:get { id = 2 })
      assert.equal("2", task.id)
      assert.equal(2, sandbox.stats().xml_logins)
      local methods = {}
      for _, e in ipairs(sandbox.xml_log()) do methods[#methods + 1] = e.xml_method end
      assert.same({ "auth.login", "task.get", "task.get", "auth.login", "task.get" }, methods)
    end)

    it("never loops: a second 0005 right after the renewal is an auth error", function()
      sandbox.config { xml = { session_ttl = 0 } } -- every session is already expired
      local xml = sandbox.xml { login = true }
      local v, err = xml.task:get { id = 1 }
      assert.is_nil(v)
      assert.equal("auth", keep(err).kind)
      assert.equal("0005", err.code)
      assert.equal(2, sandbox.stats().xml_logins)
      assert.equal(4, #sandbox.xml_log())
    end)

    it("a wrong password is an auth error (1001)", function()
      local v, err = sandbox.xml({ login = true, password = "wrong-pass" }):call("task.get", { task = { id = 1 } })
      assert.is_nil(v)
      assert.equal("auth", keep(err).kind)
      assert.equal("1001", err.code)
    end)
  end)

  describe("signatures", function()
    it("are accepted by the sandbox's own implementation of the algorithm", function()
      local xml = sandbox.xml { private_key = sandbox.XML.private_key }
      assert(xml.task:get { id = 1 })
      assert(xml.task:update({ id = 1, title = "Подписано & проверено", workers = { users = { id = { 2, 3 } } } }))
      local log = sandbox.xml_log()
      assert.matches("<signature>%x+</signature></request>$", log[1].body)
      -- The sandbox computes the same value over the same bytes.
      local check = sandbox.control("POST", "xml/sign", { xml = log[2].body, key = sandbox.XML.private_key })
      assert.equal(check.md5, log[2].body:match "<signature>(%x+)</signature>")
    end)

    it("in login mode cover the sid, and are refused with a wrong key (0006, config)", function()
      assert(sandbox.xml({ login = true, private_key = sandbox.XML.private_key }).task:get { id = 1 })
      local v, err = sandbox.xml({ private_key = "wrong-private-key" }).task:get { id = 1 }
      assert.is_nil(v)
      assert.equal("config", keep(err).kind)
      assert.equal("0006", err.code)
    end)
  end)

  describe("conversion of real answers", function()
    it("keeps Cyrillic, entities, leading zeros and one-item lists", function()
      local xml = sandbox.xml()
      local t6 = assert(xml.task:get { id = 6 })
      assert.matches("ООО «Ромашка»", t6.title)
      assert.equal(2, #t6.workers.users)
      local cv = t6.customData[1]
      assert.equal("0042", cv.value)
      local t7 = assert(xml.task:get { id = 7 })
      assert.equal("Check A < B & C > D", t7.title)
      assert.equal(0, #t7.workers.users)
      local t1 = assert(xml.task:get { id = 1 })
      assert.equal(1, #t1.workers.users)
      assert.equal(2, #t1.customData)
    end)

    it("makes list containers arrays with count and totalCount, empty ones too", function()
      sandbox.data { tasks = 0 }
      local r = assert(sandbox.xml():call("task.getList", { pageCurrent = 1, pageSize = 100 }))
      assert.equal(0, #r.tasks)
      assert.equal("0", r.tasks["@count"])
      sandbox.data { tasks = 1 }
      r = assert(sandbox.xml():call("task.getList", { pageCurrent = 1, pageSize = 100 }))
      assert.equal(1, #r.tasks)
      assert.equal("1", r.tasks["@totalCount"])
    end)
  end)

  describe("paging", function()
    for _, n in ipairs { 0, 1, 100, 101, 250 } do
      it(("walks %d tasks, stopping at totalCount"):format(n), function()
        sandbox.data { tasks = n }
        local xml = sandbox.xml()
        local ids, seen = {}, {}
        for t in xml.task:each {} do
          assert.is_nil(seen[t.id])
          seen[t.id] = true
          ids[#ids + 1] = t.id
        end
        assert.equal(n, #ids)
        local log = sandbox.xml_log()
        assert.equal(math.max(1, math.ceil(n / 100)), #log) -- no extra request after totalCount
        for i, e in ipairs(log) do
          assert.equal(tostring(i), e.xml.pageCurrent)
          assert.equal("100", e.xml.pageSize)
        end
      end)
    end

    it("yields pages with count and totalCount", function()
      sandbox.data { tasks = 25 }
      local seen = {}
      for page in sandbox.xml():pages("task.getList", {}, { page_size = 10 }) do
        seen[#seen + 1] = { #page, page.count, page.totalCount }
      end
      assert.same({ { 10, 10, 25 }, { 10, 10, 25 }, { 5, 5, 25 } }, seen)
    end)

    it("pages a list without counts (handbook records) by short page", function()
      for _, n in ipairs { 150, 100 } do
        sandbox.reset()
        sandbox.data { handbook_records = n }
        local count = 0
        for _ in sandbox.xml().handbook:records { handbook = { id = 1 } } do count = count + 1 end
        assert.equal(n, count)
        assert.equal(2, #sandbox.xml_log()) -- 100 + 50, or 100 + an empty page
      end
    end)

    it("resumes from a saved cursor", function()
      sandbox.data { tasks = 250 }
      local pager = sandbox.xml():pager("task.getList", {})
      local n = 0
      for _ in pager:each() do
        n = n + 1
        if n == 120 then break end
      end
      local rest_n = 0
      for _ in sandbox.xml():each("task.getList", {}, { cursor = pager:position() }) do rest_n = rest_n + 1 end
      assert.equal(130, rest_n)
    end)
  end)

  describe("flags, writes and files", function()
    it("sends <silent>1</silent> per call, or per client for task.update", function()
      assert(sandbox.xml().task:update({ id = 1, title = "Quiet" }, { silent = true }))
      assert.equal("1", sandbox.xml_log()[1].xml.silent)
      local xml = sandbox.xml { silent = true }
      assert(xml.task:update { id = 1, title = "Quiet again" })
      assert(xml.task:get { id = 1 })
      local log = sandbox.xml_log()
      assert.equal("1", log[2].xml.silent)
      assert.is_nil(log[3].xml.silent)
    end)

    it("adds tasks and actions", function()
      local xml = sandbox.xml()
      local task = assert(xml.task:add { title = "Новая заявка", description = "x < y" })
      assert.is_string(task.id)
      local action = assert(xml.action:add { description = "Готово", task = { id = task.id } })
      assert.is_string(action.id)
      assert.equal("Новая заявка", assert(xml.task:get { id = task.id }).title)
    end)

    it("downloads bytes, streams to a file, returns a link, and reports a missing file", function()
      local xml = sandbox.xml()
      local bytes = assert(xml.file:download(1))
      assert.is_true(#bytes > 0)
      local path = os.tmpname()
      os.remove(path)
      local r = assert(xml.file:download(1, { path = path }))
      local f = assert(io.open(path, "rb"))
      assert.equal(bytes, f:read "a")
      f:close()
      assert.equal(#bytes, r.size)
      assert.is_nil(io.open(path .. ".part", "rb"))
      os.remove(path)
      local link = assert(xml.file:download(3))
      assert.matches("/files%-download/", link.location)
      local v, err = xml.file:download(999)
      assert.is_nil(v)
      assert.equal("api", keep(err).kind)
      assert.equal("9002", err.code)
      assert.equal(404, err.status)
    end)
  end)

  describe("errors", function()
    it("caller errors are api errors with the documented meaning", function()
      local v, err = sandbox.xml().task:get { id = 424242 }
      assert.is_nil(v)
      assert.equal("api", keep(err).kind)
      assert.equal("3001", err.code)
      assert.matches("does not exist", err.message)
      assert.is_false(err.retryable)
    end)

    it("an unknown method is refused before sending, or reported (0008) when sent unchecked", function()
      local xml = sandbox.xml()
      local ok, err = pcall(xml.call, xml, "task.gett", {})
      assert.is_false(ok)
      assert.equal("config", keep(err).kind)
      assert.matches("task%.get", err.message)
      assert.equal(0, #sandbox.xml_log())
      local v, err2 = xml:call("task.frobnicate", {}, { unchecked = true })
      assert.is_nil(v)
      assert.equal("0008", keep(err2).code)
    end)

    it("quota (0007) stops at once; X-RateLimit-Remaining shows in results and errors", function()
      sandbox.config { quota = { limit = 20000, remaining = 3 } }
      local xml = sandbox.xml()
      local _, meta = assert(xml.task:get { id = 1 })
      assert.equal(2, meta.remaining)
      sandbox.config { quota = { limit = 20000, remaining = 0 } }
      local v, err = xml.task:get { id = 1 }
      assert.is_nil(v)
      assert.equal("quota", keep(err).kind)
      assert.equal("0007", err.code)
      assert.is_false(err.retryable)
      assert.equal(0, err.remaining)
      assert.equal(2, #sandbox.xml_log())
    end)

    it("retry-later codes (3014, 0011) are retried, even for a write", function()
      local t = sandbox.fake_time()
      local xml = sandbox.xml { clock = t.clock, sleep = t.sleep }
      sandbox.fault { mode = "code", code = "3014", count = 1, xml_method = "task.update" }
      assert(xml.task:update { id = 1, title = "After 3014" })
      sandbox.fault { mode = "code", code = "0011", count = 1 }
      assert(xml.task:get { id = 1 })
      assert.equal(4, #sandbox.xml_log())
    end)

    it("a write is not repeated after a server error that may have applied it", function()
      local xml = sandbox.xml()
      sandbox.fault { mode = "status", status = 503, count = 2 }
      local v, err = xml.task:add { title = "Once" }
      assert.is_nil(v)
      assert.equal("http", keep(err).kind)
      assert.equal(1, #sandbox.xml_log())
    end)

    it("a 0024 says which option to change", function()
      local xml = sandbox.xml()
      sandbox.fault { mode = "code", code = "0024", count = 1 }
      local _, err = xml.task:get { id = 1 }
      assert.equal("config", keep(err).kind)
      assert.matches("url option", err.message)
    end)

    it("a response with a DTD is a decode error, and nothing is fetched", function()
      local probe = sandbox.http_url "record/xxe-probe"
      local payload = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "' .. probe .. '">]>'
        .. '<response status="ok"><task><id>&x;</id></task></response>'
      local xml = sandbox.xml { transport = function() return { status = 200, headers = {}, body = payload } end }
      local v, err = xml.task:get { id = 1 }
      assert.is_nil(v)
      assert.equal("decode", keep(err).kind)
      for _, e in ipairs(sandbox.log()) do assert.is_nil(e.path:find("xxe", 1, true)) end
    end)
  end)

  it("never shows a credential in an error", function()
    local xml = sandbox.xml { login = true, private_key = sandbox.XML.private_key }
    assert(xml.task:get { id = 1 })
    local sid = xml.sid
    sandbox.fault { mode = "code", code = "0003", count = 1,
      message = "echo " .. sid .. " sandbox-api-key robot-pass sandbox-private-key" }
    local _, err = xml.task:get { id = 1 }
    keep(err)
    local text = {}
    for _, e in ipairs(seen_errors) do text[#text + 1] = tostring(e) .. " " .. tostring(e.message) end
    local all = table.concat(text, "\n")
    assert.is_true(#seen_errors > 10)
    for _, secret in ipairs { sid, "sandbox-api-key", "sandbox-xml-token", "robot-pass", "sandbox-private-key",
      core.base64 "sandbox-api-key:sandbox-xml-token" } do
      assert.is_nil(all:find(secret, 1, true), secret)
    end
    assert.is_nil(tostring(xml):find("robot-pass", 1, true))
  end)

  it("planapi.planfix_xml.methods() and .DATA_CENTRES work as README and the error message name them", function()
    local planapi = require "planapi"
    assert.equal(79, #planapi.planfix_xml.methods())
    assert.matches("^https://", planapi.planfix_xml.DATA_CENTRES.europe)
    local ok, err = pcall(function() return sandbox.xml():call("task.gett", {}) end)
    assert.is_false(ok)
    assert.matches("listed by planfix_xml.methods()", tostring(err), 1, true)
    local names = {}
    for _, m in ipairs(planapi.planfix_xml.methods()) do names[m] = true end
    assert.is_true(names["task.get"] and names["task.getList"])
  end)
end)
