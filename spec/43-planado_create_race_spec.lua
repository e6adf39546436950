-- One Planado object per external_id, even when the first POST is slow
-- (issue 13 §2). The race, driven by the sandbox with real time:
--
--   t=0        POST 1 is received; the sandbox holds it D seconds ("slow")
--   t=T        the client times out (T < D): the outcome is unknown
--   t=T+w      the lookup GET <collection>/<external_id> runs at once and
--              finds nothing; its answer is held L seconds ("late")
--   t=D        POST 1 is carried out: the object exists
--   t=T+w+L    the lookup answers 404; POST 2 is refused: external_id taken
--
-- The client must then look the object up again and return it as
-- recovered: no error for an object that exists, never a second one. The
-- oracle is the sandbox's own store and log, not the client's answer.
package.path = "examples/?.lua;" .. package.path
local core = require "planapi.core"
local sandbox = require "sandbox"
local planapi = require "planapi"
local Bridge = require "planfix_to_planado"

-- Margins, each well beyond the jitter of a loaded machine: the lookup runs
-- 0.6 s before POST 1 lands, and answers 0.5 s after it landed and 0.4 s
-- before its own timeout. The specs check that the race went as designed.
local T, D, WAIT, L = 1.5, 2.2, 0.1, 1.1

local function racing_client(attempts)
  return sandbox.planado { timeout = T, real_time = true,
    retry = { attempts = attempts or 3, base = WAIT, random = function() return 1 end } }
end

local tags = 0
local function new_tag(kind)
  tags = tags + 1
  return ("race-%s-%d-%d"):format(kind, os.time(), tags)
end

-- What a create sends, and what the sandbox calls the collection.
local KINDS = {
  jobs = { body = function(tag) return { external_id = tag, description = tag } end },
  clients = { body = function(tag) return { external_id = tag, organization = true, organization_name = tag } end },
  sites = { body = function(tag) return { external_id = tag, name = tag } end },
}

local stored_with, requests_of = sandbox.planado_stored, sandbox.planado_requests

-- The POST is carried out after the client gave up on it, and the lookup
-- finds nothing but answers after that.
local function drive_race(collection, tag)
  sandbox.fault { mode = "slow", method = "POST", path = "/planado/v2/" .. collection, delay = D, count = 1 }
  sandbox.fault { mode = "late", method = "GET", path = "/planado/v2/" .. collection .. "/" .. tag,
    delay = L, count = 1 }
end

describe("Planado create by external_id under a slow first POST", function()
  before_each(function() sandbox.reset() end)

  for _, collection in ipairs { "jobs", "clients", "sites" } do
    it(("%s: a refused second POST means the first won: recovered, exactly one object"):format(collection),
      function()
        local pd = racing_client()
        local tag = new_tag(collection)
        drive_race(collection, tag)
        local uuid, meta = pd[collection]:create(KINDS[collection].body(tag))
        assert.is_string(uuid, tostring(meta))
        assert.is_true(meta.recovered)
        -- the race happened as designed: two POSTs, the second refused
        local posts, lookups = requests_of(collection, tag)
        assert.equal(2, #posts, "the race did not happen as designed (timing?)")
        assert.equal("slow", posts[1].fault)
        assert.equal(201, posts[1].status)
        assert.equal(422, posts[2].status)
        assert.equal(2, #lookups)
        assert.equal(404, lookups[1].status)
        assert.equal(200, lookups[2].status)
        -- the sandbox holds exactly one, and it is the one returned
        local stored = stored_with(collection, tag)
        assert.equal(1, #stored)
        assert.equal(stored[1].uuid, uuid)
        pd:close()
      end)
  end

  it("looks again while the refused external_id is not visible yet, and finds the job", function()
    local pd = racing_client()
    local tag = new_tag "jobs"
    drive_race("jobs", tag)
    -- the first lookup after the refusal still finds nothing (a lagging read)
    sandbox.fault { mode = "status", status = 404, error = "Job not found", method = "GET",
      path = "/planado/v2/jobs/" .. tag, count = 1 }
    local uuid, meta = pd.jobs:create(KINDS.jobs.body(tag))
    assert.is_string(uuid, tostring(meta))
    assert.is_true(meta.recovered)
    local posts, lookups = requests_of("jobs", tag)
    assert.equal(2, #posts)
    assert.equal(3, #lookups)
    assert.equal(1, #stored_with("jobs", tag))
    assert.equal(stored_with("jobs", tag)[1].uuid, uuid)
  end)

  it("gives up after a bounded number of lookups that find nothing, without a second job", function()
    local pd = racing_client(3)
    local tag = new_tag "jobs"
    drive_race("jobs", tag)
    sandbox.fault { mode = "status", status = 404, error = "Job not found", method = "GET",
      path = "/planado/v2/jobs/" .. tag, count = 3 }
    local started = core.monotime()
    local v, err = pd.jobs:create(KINDS.jobs.body(tag))
    assert.is_nil(v)
    assert.equal("api", err.kind, tostring(err))
    assert.equal(422, err.status)
    assert.is_true(err.external_id_taken)
    assert.matches("3 lookups", tostring(err))
    assert.is_nil(tostring(err):find("\n", 1, true))
    local posts, lookups = requests_of("jobs", tag)
    assert.equal(2, #posts)
    assert.equal(4, #lookups) -- one before the second POST, three after its refusal
    assert.equal(1, #stored_with("jobs", tag))
    -- bounded: the waits between the lookups are the policy's (0.1 + 0.2 s)
    assert.is_true(core.monotime() - started < D + L + 5)
  end)

  it("a refused external_id without an earlier unknown outcome is the caller's error, not looked up", function()
    local pd = sandbox.planado()
    local v, err = pd.jobs:create { external_id = "job-ext-1", description = "a second job-ext-1" }
    assert.is_nil(v)
    assert.equal("api", err.kind)
    assert.equal(422, err.status)
    assert.is_true(err.external_id_taken)
    local posts, lookups = requests_of("jobs", "job-ext-1")
    assert.equal(1, #posts)
    assert.equal(0, #lookups)
  end)

  it("a slow POST without an external_id is never sent again, and it still lands once", function()
    local pd = racing_client()
    local tag = new_tag "noext"
    sandbox.fault { mode = "slow", method = "POST", path = "/planado/v2/jobs", delay = D, count = 1 }
    local v, err = pd.jobs:create { description = tag }
    assert.is_nil(v)
    assert.equal("timeout", err.kind, tostring(err))
    -- wait (bounded) for the sandbox to carry the held POST out
    local deadline = core.monotime() + D + 5
    local landed
    repeat
      landed = 0
      for _, rec in pairs(sandbox.control("GET", "store/planado_jobs").planado_jobs) do
        if type(rec) == "table" and rec.description == tag then landed = landed + 1 end
      end
      if landed == 0 then core.sleep(0.05) end
    until landed > 0 or core.monotime() > deadline
    assert.equal(1, landed)
    local posts = requests_of("jobs", tag)
    assert.equal(1, #posts)
  end)

  describe("upsert (PATCH by external_id)", function()
    it("a slow PATCH and its retry make one client", function()
      local pd = racing_client()
      local tag = new_tag "upsert"
      sandbox.fault { mode = "slow", method = "PATCH", path = "/planado/v2/clients/" .. tag, delay = D, count = 1 }
      local r, err = pd.clients:upsert(tag, { organization = true, organization_name = tag })
      assert.is_table(r, tostring(err))
      assert.is_true(r.created)
      -- the held PATCH lands after the retry made the client: an update
      local deadline = core.monotime() + D + 5
      local patches
      repeat
        patches = 0
        for _, e in ipairs(sandbox.log_of "planado") do
          if e.method == "PATCH" and e.path == "/clients/" .. tag then patches = patches + 1 end
        end
        if patches < 2 then core.sleep(0.05) end
      until patches >= 2 or core.monotime() > deadline
      assert.equal(2, patches)
      local stored = stored_with("clients", tag)
      assert.equal(1, #stored)
      assert.equal(r.uuid, stored[1].uuid)
    end)

    it("a PATCH refused because a concurrent create took the external_id is sent again as an update", function()
      local pd = sandbox.planado()
      local tag = new_tag "upsert"
      -- what a server that raced two creates inside answers to the loser
      sandbox.fault { mode = "status", status = 422, error = "external_id: has already been taken",
        method = "PATCH", path = "/planado/v2/sites/" .. tag, count = 1 }
      local r, err = pd.sites:upsert(tag, { name = tag })
      assert.is_table(r, tostring(err))
      assert.equal(1, #stored_with("sites", tag))
      assert.equal(r.uuid, stored_with("sites", tag)[1].uuid)
    end)
  end)

  describe("the bridge (examples/planfix_to_planado.lua)", function()
    local function bridge(pd)
      return Bridge.new { source = "rest", planfix = sandbox.rest(), planado = pd,
        webhook = planapi.planado_webhook { secret = "race-secret" }, status = 1, done_status = 3 }
    end

    it("a job created by a concurrent run between the bridge's lookup and its create counts as existing",
      function()
        local pd = sandbox.planado()
        local b = bridge(pd)
        local first = b:tasks()[1]
        local ext = "planfix-" .. first.id
        local other = assert(pd.jobs:create { external_id = ext, description = "made by another run" })
        -- the bridge's own lookup misses it (the other run's POST was not visible yet)
        sandbox.fault { mode = "status", status = 404, error = "Job not found", method = "GET",
          path = "/planado/v2/jobs/" .. ext, count = 1 }
        local counts, jobs = b:sync()
        assert.equal(0, counts.failed)
        assert.equal(1, counts.existing)
        assert.equal(counts.tasks - 1, counts.created)
        assert.equal(other, jobs[tostring(first.id)])
        assert.equal(1, #stored_with("jobs", ext))
      end)

    it("a slow first POST during a sync is recovered: every task has exactly one job", function()
      local pd = racing_client()
      local b = bridge(pd)
      local first = b:tasks()[1]
      local ext = "planfix-" .. first.id
      sandbox.clear_log()
      -- the bridge looks each job up before creating it; the race is on its create
      sandbox.fault { mode = "slow", method = "POST", path = "/planado/v2/jobs", delay = D, count = 1 }
      sandbox.fault { mode = "status", status = 404, error = "Job not found", method = "GET",
        path = "/planado/v2/jobs/" .. ext, count = 1 }
      sandbox.fault { mode = "late", method = "GET", path = "/planado/v2/jobs/" .. ext, delay = L, count = 1 }
      local counts, jobs = b:sync()
      assert.equal(0, counts.failed)
      assert.equal(counts.tasks, counts.created)
      for id, uuid in pairs(jobs) do
        local stored = stored_with("jobs", "planfix-" .. id)
        assert.equal(1, #stored)
        assert.equal(stored[1].uuid, uuid)
      end
    end)
  end)
end)
