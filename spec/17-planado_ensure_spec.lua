-- Planado get-or-create by external_id (issue 20): pd.jobs:ensure, pd.clients:ensure and
-- pd.sites:ensure return the object that has the external_id, creating it when none does; an
-- existing one is not changed. Two (four) processes ensuring the same external_id at once make
-- ONE object: each worker's create waits until every worker has come to its create (its lookup
-- missed; spec/helpers/ensure_worker.lua), so every worker creates, one POST wins and the others, refused because the external_id is taken,
-- return the winner's object. The oracle is the sandbox's store and request log.
local portable = require "portable"
local sandbox = require "sandbox"
local workers = require "workers"

local WORKERS = 4

local FIELDS = {
  jobs = { description = "Fix pump" },
  clients = { organization = true, organization_name = "Acme" },
  sites = { name = "Boiler room" },
}

local tags = 0
local function new_tag(kind)
  tags = tags + 1
  return ("ensure-%s-%d-%d"):format(kind, os.time(), tags)
end

local stored_with, requests_of = sandbox.planado_stored, sandbox.planado_requests

describe("Planado ensure by external_id", function()
  before_each(function() sandbox.reset() end)

  for collection, fields in pairs(FIELDS) do
    it(collection .. ": creates when none has the external_id, then returns it unchanged", function()
      local pd = sandbox.planado()
      local tag = new_tag(collection)
      local obj, meta = pd[collection]:ensure(tag, fields)
      assert.is_table(obj, tostring(meta))
      assert.is_true(meta.created)
      assert.equal(tag, obj.external_id)
      local again, meta2 = pd[collection]:ensure(tag, collection == "sites" and { name = "Other" } or fields)
      assert.equal(obj.uuid, again.uuid)
      assert.is_false(meta2.created)
      local stored = stored_with(collection, tag)
      assert.equal(1, #stored)
      assert.equal(obj.uuid, stored[1].uuid)
      if collection == "sites" then assert.equal("Boiler room", stored[1].name) end -- not updated
      local posts, lookups = requests_of(collection, tag)
      assert.equal(1, #posts)
      assert.equal(2, #lookups) -- one per ensure (the created one is read back by its uuid)
      pd:close()
    end)
  end

  it("refuses a missing external_id, another one in the fields, and an unknown field, sending nothing", function()
    local pd = sandbox.planado()
    for _, bad in ipairs {
      function() pd.jobs:ensure(nil, {}) end,
      function() pd.jobs:ensure("", {}) end,
      function() pd.jobs:ensure("a", { external_id = "b" }) end,
      function() pd.jobs:ensure("a", { descripton = "typo" }) end,
    } do
      local ok, err = pcall(bad)
      assert.is_false(ok)
      assert.equal("config", err.kind, tostring(err))
    end
    assert.equal(0, #sandbox.log_of "planado")
  end)

  it("an error other than not found is returned, and nothing is created", function()
    local pd = sandbox.planado()
    local tag = new_tag "jobs"
    sandbox.fault { mode = "status", status = 403, method = "GET", path = "/planado/v2/jobs/" .. tag, count = 1 }
    local obj, err = pd.jobs:ensure(tag, FIELDS.jobs)
    assert.is_nil(obj)
    assert.equal("auth", err.kind)
    assert.equal(0, #stored_with("jobs", tag))
  end)

  -- jobs only: clients and sites ensure through the same code, and a race costs a second
  for _, collection in ipairs { "jobs" } do
    it(("%s: %d processes ensuring one external_id at once make one object"):format(collection, WORKERS),
      function()
        local tag = new_tag(collection)
        local results, dir = workers.run(WORKERS, "spec/helpers/ensure_worker.lua",
          function(i, d) return { d, i, collection, tag, WORKERS } end)
        portable.rmtree(dir)
        local stored = stored_with(collection, tag)
        assert.equal(1, #stored)
        local created = 0
        for i, r in ipairs(results) do
          assert.is_nil(r.error, r.error)
          assert.equal(stored[1].uuid, r.uuid, "worker " .. i)
          if r.created then created = created + 1 end
        end
        assert.equal(1, created)
        -- the race happened as designed: every worker's lookup missed, every worker posted, one won
        local posts, lookups = requests_of(collection, tag)
        assert.equal(WORKERS, #posts, "the race did not happen as designed (timing?)")
        local won, refused = 0, 0
        for _, p in ipairs(posts) do
          if p.status == 201 or p.status == 200 then won = won + 1 elseif p.status == 422 then refused = refused + 1 end
        end
        assert.equal(1, won)
        assert.equal(WORKERS - 1, refused)
        assert.is_true(#lookups >= 2 * WORKERS - 1) -- one miss each, then the losers' lookups that find it
      end)
  end
end)
