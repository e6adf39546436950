-- The three clients are one scaffold (lua/planapi/scaffold.lua and
-- client_base.lua): a capability added there is on all three at once, and
-- the wrappers every client has behave the same on all three, against the
-- sandbox's lists (Planfix REST and XML tasks, Planado jobs).
local planapi = require "planapi"
local core = require "planapi.core"
local scaffold = require "planapi.scaffold"
local base = require "planapi.client_base"
local sandbox = require "sandbox"

local WRAPPERS = { "perform", "pages", "each", "all", "close" }
local N = 7 -- items in each list: more than one page of 3

-- Per API: a client on the sandbox, the arguments of its pager over a list
-- of N items (pages of 3 where the API takes a page size), the key of an
-- item, and a cheap request to perform.
local APIS = {
  {
    name = "planfix_rest", client = function(o) return sandbox.rest(o) end,
    list = { "get-task-list", { fields = "id,name" }, { page_size = 3 } },
    key = function(item) return tostring(item.id) end,
    request = function(c) return c:prepare("get-task-by-id", { id = 1 }) end,
  },
  {
    name = "planfix_xml", client = function(o) return sandbox.xml(o) end,
    list = { "task.getList", {}, { page_size = 3 } },
    key = function(item) return tostring(item.id) end,
    request = function(c) return c:prepare("task.get", { task = { id = 1 } }) end,
  },
  {
    name = "planado", client = function(o) return sandbox.planado(o) end,
    list = { "jobs", {}, { list_key = "jobs" } },
    key = function(item) return item.uuid end,
    request = function(c) return c:prepare("GET", "jobs") end,
  },
}

-- The list's arguments with extra pager options.
local function list_args(api, extra)
  local path, params, opts = api.list[1], api.list[2], {}
  for k, v in pairs(api.list[3]) do opts[k] = v end
  for k, v in pairs(extra or {}) do opts[k] = v end
  return path, params, opts
end

local function keys(api, items)
  local out = {}
  for i, item in ipairs(items) do out[i] = api.key(item) end
  return out
end

local function clients()
  local out = {}
  for _, api in ipairs(APIS) do out[api.name] = api.client() end
  return out
end

describe("one client scaffold", function()
  before_each(function()
    sandbox.reset()
    sandbox.data { tasks = N, planado_jobs = N }
  end)

  it("gives every client the same wrappers, none written in an API package", function()
    for name, c in pairs(clients()) do
      local class = getmetatable(c)
      for _, w in ipairs(WRAPPERS) do
        assert.is_nil(rawget(class, w), ("%s defines %s itself"):format(name, w))
        assert.equal(scaffold.methods[w], c[w], ("%s.%s"):format(name, w))
      end
      c:close()
    end
  end)

  it("puts a method added to the scaffold at run time on all three clients", function()
    -- a capability written once: the first page of any list, on every client
    scaffold.methods.first_page = function(self, ...) return self:pager(...):next_page() end
    local ok, err = pcall(function()
      for _, api in ipairs(APIS) do
        local c = api.client()
        local page = assert(c:first_page(list_args(api)))
        assert.truthy(#page >= 1 and #page <= N, api.name)
        c:close()
      end
    end)
    scaffold.methods.first_page = nil
    assert(ok, err)
    assert.has_error(function() return sandbox.rest().first_page end)
  end)

  it("checks an option added to the shared options at run time on all three clients", function()
    base.LOOP_OPTIONS.on_call = "function"
    local ok, err = pcall(function()
      for _, api in ipairs(APIS) do
        api.client { on_call = function() end }:close()
        local typed = select(2, pcall(api.client, { on_call = 1 }))
        assert.equal("config", typed.kind, api.name)
        assert.matches("option 'on_call' must be function, got number", typed.message, 1, true)
        local typo = select(2, pcall(api.client, { on_cal = print }))
        assert.equal("config", typo.kind, api.name)
        assert.matches("unknown " .. api.name .. " option 'on_cal'", typo.message, 1, true)
        assert.matches("on_call", typo.message, 1, true)
      end
    end)
    base.LOOP_OPTIONS.on_call = nil
    assert(ok, err)
    assert.has_error(function() sandbox.planado { on_call = print } end)
  end)

  for _, api in ipairs(APIS) do
    describe("on " .. api.name, function()
      it("all, each and pages give the same items, every one of the list once", function()
        local c = api.client()
        local all, pager = c:all(list_args(api))
        assert.is_table(all, tostring(pager))
        assert.equal(N, #all)
        assert.is_falsy(pager.truncated)
        local want = keys(api, all)
        local seen = {}
        for _, k in ipairs(want) do seen[k] = true end
        local distinct = 0
        for _ in pairs(seen) do distinct = distinct + 1 end
        assert.equal(N, distinct)
        local each = {}
        for item in c:each(list_args(api)) do each[#each + 1] = api.key(item) end
        assert.same(want, each)
        local paged, pages = {}, 0
        for page in c:pages(list_args(api)) do
          pages = pages + 1
          for _, item in ipairs(page) do paged[#paged + 1] = api.key(item) end
        end
        assert.same(want, paged)
        if api.list[3].page_size then assert.equal(3, pages) end -- 3 + 3 + 1
        c:close()
      end)

      it("all stops at max_items and its pager says the list was cut", function()
        local c = api.client()
        local items, pager = c:all(list_args(api, { max_items = 2 }))
        assert.equal(2, #items)
        assert.is_true(pager.truncated)
        c:close()
      end)

      it("each and pages raise a failed page's error, all returns it", function()
        local c = api.client { retry = { attempts = 1 } }
        sandbox.fault { mode = "status", status = 500, count = 10 }
        local items, err = c:all(list_args(api))
        assert.is_nil(items)
        assert.truthy(planapi.is_error(err))
        for _, walk in ipairs { "each", "pages" } do
          local ok, raised = pcall(function()
            for _ in c[walk](c, list_args(api)) do end
          end)
          assert.is_false(ok)
          assert.equal(err.kind, raised.kind, walk)
        end
        c:close()
      end)

      -- The call loop hands a request straight to libcurl when the transport
      -- is the client's own libcurl one and the limiter confirms in C, and
      -- leaves reading the clock to the shm limiter when the clock is
      -- core.monotime (client_base's pace and send). A wrapper around the
      -- same libcurl transport takes the general send, a wrapper around
      -- core.monotime the general clock: all must answer, pace and clean
      -- up alike. The oracle for the pacing: the schedule after the i-th
      -- call lies an interval after a reading of core.monotime taken before
      -- it, and at most i + 1 intervals after one taken after it.
      for _, scope in ipairs { "local", "shm" } do
        it(("answers and paces alike with libcurl and the clock reached directly or not (%s limiter)")
          :format(scope), function()
          local file = os.tmpname()
          local interval = 0.01
          local function calls(variant)
            local c = api.client { real_time = true, limiter = scope == "local" and "local" or "shm:" .. file,
              limiter_key = variant, rate = { rate = 1 / interval, per = 1, burst = 1000, margin = 0 },
              -- a schedule on the wrong clock fails here instead of sleeping for hours
              sleep = function(s) assert(s < 1, ("a wait of %f s"):format(s)) core.sleep(s) end }
            assert.equal(c.curl, c.transport) -- the direct send's precondition
            assert.equal("userdata", type(c.pacer))
            assert.equal(core.monotime, c.clock)
            local sent, steps = {}, {}
            if variant == "transport" then
              local curl = c.transport
              c.transport = function(req)
                sent[#sent + 1] = { confirm = type(req.confirm), pacer = req.pacer == c.pacer }
                return curl(req)
              end
            elseif variant == "clock" then
              c.clock = function() return core.monotime() end
            end
            if scope == "local" then
              for _, m in ipairs { "reserve", "settle", "release" } do
                local f = c.limiter[m]
                c.limiter[m] = function(...) steps[#steps + 1] = m return f(...) end
              end
            end
            local out = {}
            for i = 1, 3 do
              local before, t0 = c.pacer:info().send_tat, core.monotime()
              local req = api.request(c)
              local result, meta = base.run(c, req)
              local t1 = core.monotime()
              assert.is_table(result, tostring(meta))
              meta.headers.date = nil -- the only header that may change between two answers
              local tat = c.limiter:info().tat
              out[i] = { result = result, meta = meta, fields = { pacer = req.pacer, confirm = req.confirm },
                confirmed_in_c = c.pacer:info().send_tat > before,
                scheduled = tat >= t0 + interval - 1e-6 and tat <= t1 + (i + 1) * interval + 1e-6 }
            end
            c:close()
            return out, steps, sent
          end
          local direct, direct_steps, none = calls "direct"
          local general, general_steps, sent = calls "transport"
          local clocked, clocked_steps = calls "clock"
          os.remove(file)
          assert.same(direct, general)
          assert.same(direct, clocked)
          for i = 1, 3 do
            assert.same({}, direct[i].fields) -- req.pacer and req.confirm are the call's only
            assert.is_true(direct[i].confirmed_in_c)
            assert.is_true(direct[i].scheduled)
            assert.same({ status = 200, attempts = 1, waited = 0 },
              { status = direct[i].meta.status, attempts = direct[i].meta.attempts, waited = direct[i].meta.waited })
          end
          if scope == "local" then
            assert.same({ "reserve", "settle", "reserve", "settle", "reserve", "settle" }, direct_steps)
          end
          assert.same(direct_steps, general_steps)
          assert.same(direct_steps, clocked_steps)
          assert.same({}, none)
          assert.same({ { confirm = "function", pacer = true }, { confirm = "function", pacer = true },
            { confirm = "function", pacer = true } }, sent)
        end)
      end

      it("perform sends a prepared request through the transport alone, unparsed", function()
        local c = api.client()
        sandbox.clear_log()
        local res = assert(c:perform(api.request(c)))
        assert.equal(200, res.status)
        assert.is_string(res.body)
        assert.is_nil(res.attempts) -- the transport's answer, not a call's meta
        assert.equal(1, #sandbox.log())
        c:close()
      end)
    end)
  end
end)
