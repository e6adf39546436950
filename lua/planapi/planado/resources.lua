-- planado/resources.lua: the documented Planado v2 resources as methods.
--   local uuid = assert(pd.jobs:create{ external_id = "pf-42", description = "Fix pump" })
--   local job = assert(pd.jobs:get("pf-42"))          -- a uuid or an external_id
--   pd.jobs:update(uuid, { scheduled_at = planapi.null }, { notify_assignees = false })
--   for job in pd.jobs:each{ status = { "posted", "scheduled" } } do ... end
--   local r = assert(pd.clients:upsert("crm-7", { organization = true, organization_name = "Acme" }))
--   if r.created then ... end
--   local job, meta = assert(pd.jobs:ensure("pf-42", { description = "Fix pump" }))  -- get or create
local core = require "planapi.core"
local base = require "planapi.client_base"

local config_error = base.config_error
local url_join = core.url_join

local M = {}

-- collection .. "/" .. the ref escaped
local function ref_path(collection, ref)
  return url_join(collection, ref) or config_error(collection .. ": a uuid or external_id is required", 3)
end

-- The answer's object, or nil and a decode error (client_base.expect).
local function expect(value, meta, what, wrote)
  return base.expect(value, meta, what, nil, wrote)
end

-- Methods every listable collection has.
local function listing(pd, res, path, list_key, cursor_field)
  local function o(opts)
    local t = { list_key = list_key, cursor_field = cursor_field }
    for k, v in pairs(opts or {}) do t[k] = v end
    return t
  end
  function res.each(_, params, opts) return pd:each(path, params, o(opts)) end
  function res.pages(_, params, opts) return pd:pages(path, params, o(opts)) end
  function res.pager(_, params, opts) return pd:pager(path, params, o(opts)) end
  function res.all(_, params, opts) return pd:all(path, params, o(opts)) end
end

-- get / create / update for a resource with uuid-or-external_id paths.
local function crud(pd, res, collection, kind, uuid_key)
  function res.get(_, ref, opts)
    local result, meta = pd:call("GET", ref_path(collection, ref), nil, opts)
    if not result then return nil, meta end
    -- one documented sample wraps a site as "sites": accept both
    return base.expect(result[kind] or result[kind .. "s"], meta, kind)
  end
  function res.create(_, fields, opts)
    pd:check_fields(kind, fields, 2)
    local result, meta = pd:create(collection, fields or {}, opts, collection)
    if not result then return nil, meta end
    if result.recovered then return expect((result[kind] or {}).uuid, meta, kind .. " uuid", true) end
    return expect(result[uuid_key], meta, uuid_key, true)
  end
  function res.update(_, ref, fields, opts)
    pd:check_fields(kind, fields, 2)
    local result, meta = pd:call("PATCH", ref_path(collection, ref), fields or {}, opts)
    if not result then return nil, meta end
    return expect(result[uuid_key], meta, uuid_key, true)
  end
end

-- The body of a write by external_id (upsert, ensure): the fields and the external_id, checked.
local function by_external_id(pd, collection, kind, method, external_id, fields)
  if type(external_id) ~= "string" or external_id == "" then
    config_error(("%s:%s needs an external_id"):format(collection, method), 3)
  end
  local body = {}
  for k, v in pairs(fields or {}) do body[k] = v end
  body.external_id = body.external_id or external_id
  pd:check_fields(kind, body, 3)
  return body
end

-- PATCH by external_id creates an unknown client or site: say which happened.
-- A 201 says "created"; otherwise the object's version tells (1 = new). A
-- PATCH is idempotent, so the call loop repeats it after a timeout, a reset
-- or a 5xx: whichever copy lands first creates, the other one updates.
local function upsert(pd, res, collection, kind, uuid_key)
  function res.upsert(_, external_id, fields, opts)
    local body = by_external_id(pd, collection, kind, "upsert", external_id, fields)
    local path = ref_path(collection, external_id)
    local result, meta = pd:call("PATCH", path, body, opts)
    -- Refused as taken: a concurrent create of the same external_id won
    -- inside the server. It exists now, so the same PATCH updates it.
    if not result and meta.external_id_taken and body.external_id == external_id then
      result, meta = pd:call("PATCH", path, body, opts)
    end
    if not result then return nil, meta end
    if meta.dry_run then return result, meta end -- the request that was not sent
    local out = { uuid = result[uuid_key] }
    if meta.status == 201 then
      out.created = true
    else
      local obj, err = res:get(out.uuid or external_id)
      if not obj then return nil, err end
      out.uuid = out.uuid or obj.uuid
      out.created = obj.version == 1
      out.version = obj.version
    end
    return out, meta
  end
end

-- Get-or-create by external_id: the object when one has it, else a create with the fields (and
-- the external_id). A create whose answer is lost is resolved by pd:create (create_recovery.lua);
-- a create refused because the external_id is taken means another caller created it between the
-- lookup and the create (Planado keeps external_id unique, its API documentation says): that one
-- is looked up (pd:recover_taken, waiting while it is not visible yet) and returned. So two
-- ensures racing make one object. meta.created says whether this call created it; an existing
-- object is returned as it is (not updated: that is upsert's or update's work).
local function ensure(pd, res, collection, kind)
  function res.ensure(_, external_id, fields, opts)
    local body = by_external_id(pd, collection, kind, "ensure", external_id, fields)
    if body.external_id ~= external_id then
      config_error(collection .. ":ensure: fields.external_id differs from the external_id given", 2)
    end
    local obj, meta = res:get(external_id, opts)
    if obj ~= nil or meta.status ~= 404 then
      if obj ~= nil then meta.created = false end
      return obj, meta
    end
    local uuid, cmeta = res:create(body, opts)
    if uuid == nil and not cmeta.external_id_taken then return nil, cmeta end
    if cmeta.dry_run then return uuid, cmeta end -- the request that was not sent
    if uuid == nil then
      local found, fmeta = pd:recover_taken(ref_path(collection, external_id), cmeta, 1)
      if found == nil then return nil, fmeta end
      obj = found[kind] or found[kind .. "s"]
      fmeta.created, fmeta.recovered = false, nil
      return expect(obj, fmeta, kind)
    end
    obj, meta = res:get(uuid, opts)
    if obj ~= nil then meta.created = true end
    return obj, meta
  end
end

-- A catalog collection (services, products): a list and a create.
local function catalog(pd, res, collection, kind)
  local path = "catalog/" .. collection
  listing(pd, res, path, collection)
  function res.create(_, fields, opts)
    pd:check_fields(kind, fields, 2)
    local result, meta = pd:create(path, fields or {}, opts)
    if not result then return nil, meta end
    return expect(result[kind .. "_uuid"], meta, kind .. "_uuid", true)
  end
end

-- Clients and sites: the same four groups of methods, on their own collection
-- (`<kind>_uuid` the key their upsert answers by).
local function records_with_external_id(collection, kind)
  return function(pd, res)
    crud(pd, res, collection, kind, kind .. "_uuid")
    ensure(pd, res, collection, kind)
    upsert(pd, res, collection, kind, kind .. "_uuid")
    listing(pd, res, collection, collection)
  end
end

local BUILD = {
  jobs = function(pd, res)
    crud(pd, res, "jobs", "job", "job_uuid")
    ensure(pd, res, "jobs", "job")
    listing(pd, res, "jobs", "jobs")
    function res.delete(_, uuid, opts) return pd:call("DELETE", ref_path("jobs", uuid), nil, opts) end
    --- for event in pd.jobs:history(uuid) do ... end: events oldest first, by version
    function res.history(_, uuid, opts)
      local o = { list_key = "events", cursor_field = "version" }
      for k, v in pairs(opts or {}) do o[k] = v end
      return pd:each(ref_path("jobs", uuid) .. "/history", nil, o)
    end
  end,
  clients = records_with_external_id("clients", "client"),
  sites = records_with_external_id("sites", "site"),
  job_types = function(pd, res) listing(pd, res, "job_types", "job_types") end,
  templates = function(pd, res)
    listing(pd, res, "templates", "templates")
    function res.get(_, uuid, opts)
      local result, meta = pd:call("GET", ref_path("templates", uuid), nil, opts)
      if not result then return nil, meta end
      return result.template or result, meta
    end
  end,
  teams = function(pd, res) listing(pd, res, "teams", "teams") end,
  users = function(pd, res)
    listing(pd, res, "users", "users")
    --- restricted by Planado ("contact support to enable")
    function res.create(_, fields, opts)
      local result, meta = pd:create("users", fields or {}, opts)
      if not result then return nil, meta end
      return expect(result.user_uuid, meta, "user_uuid", true)
    end
  end,
  skills = function(pd, res) listing(pd, res, "skills", "skills") end,
  services = function(pd, res) catalog(pd, res, "services", "service") end,
  products = function(pd, res) catalog(pd, res, "products", "product") end,
  webhooks = function(pd, res)
    listing(pd, res, "webhooks", "webhooks")
    --- for r in pd.webhooks:requests(uuid) do ... end: the delivery log
    function res.requests(_, uuid, params, opts)
      local o = { list_key = "requests" }
      for k, v in pairs(opts or {}) do o[k] = v end
      return pd:each(ref_path("webhooks", uuid) .. "/requests", params, o)
    end
  end,
  print = function(pd, res)
    --- pd.print:request{ job = { uuid = }, print_template = { uuid = } } -> uuid
    function res.request(_, fields, opts)
      pd:check_fields("print_request", fields, 2)
      local result, meta = pd:call("POST", "print/requests", fields or {}, opts)
      if not result then return nil, meta end
      return expect(result.uuid, meta, "uuid", true)
    end
  end,
}

function M.bind(pd, name)
  local build = BUILD[name]
  if build == nil then return nil end
  local res = {}
  build(pd, res)
  return res
end

function M.names()
  local out = {}
  for name in pairs(BUILD) do out[#out + 1] = name end
  table.sort(out)
  return out
end

return M
