-- The emulated Planado API v2 (Planado's API documentation) under /planado/v2/: pipeline
-- (auth, leaky-bucket rate limit, routing, JSON body), the resources and
-- their tri-state updates, keyset paging, and the /_sandbox/planado/ control
-- endpoints. Data: sandbox.planado_data (in sandbox.store's db); events and
-- webhooks: sandbox.planado_hooks.
--
-- Handlers get (req, params) and return status, body table. Validation
-- failures are raised with perr(status, message) and answered as
-- {"errors":[{"message":"..."}]} (the real error shape is undocumented).
local json = require("sandbox.json")
local util = require("sandbox.util")
local store = require("sandbox.store")
local router = require("sandbox.router")
local data = require("sandbox.planado_data")
local hooks = require("sandbox.planado_hooks")
local outbound = require("sandbox.outbound")

local M = {}
local null = json.null
local arr = data.arr

---------------------------------------------------------------- config

M.API_KEY = require("sandbox.credentials").planado_api_key

-- Page sizes per list (page_sizes overrides page_size). "history" is the
-- chunk of GET /jobs/{uuid}/history, "requests" the webhook delivery log.
M.LISTS = {
  jobs = true, clients = true, sites = true, job_types = true, templates = true, teams = true,
  users = true, skills = true, services = true, products = true, webhooks = true,
  requests = true, history = true,
}

local function default_config()
  return {
    api_key = M.API_KEY,
    legacy_header = true,         -- X-Planado-API-Key accepted
    page_size = 50,
    page_sizes = { skills = 20, history = 20 },
    rate = { enabled = false, per_minute = 60, burst = 5, retry_after = false, text = false },
    print = { max_running = 10, duration = 2 },
  }
end

local function new_state()
  return {
    config = default_config(),
    bucket = { level = 0, t = nil },
    requests = 0,        -- received under /planado (faulted ones included)
    accepted = 0,        -- got past auth and the rate limit
    violations = 0,      -- answered "over the limit" by the bucket
  }
end

M.state = new_state()

function M.reset()
  M.state = new_state()
  hooks.reset()
end

function M.count()
  M.state.requests = M.state.requests + 1
end

local function check_keys(t, known, what)
  for k in pairs(t) do
    if not known[k] then return nil, "unknown " .. what .. " key '" .. tostring(k) .. "'" end
  end
  return true
end

local function configure_rate(r)
  local c = M.state.config.rate
  if r == false then
    c.enabled = false
  elseif type(r) == "table" then
    local ok, err = check_keys(r, { enabled = true, per_minute = true, burst = true, retry_after = true, text = true }, "planado.rate")
    if not ok then return nil, err end
    for _, k in ipairs({ "enabled", "retry_after", "text" }) do
      if r[k] ~= nil then
        if type(r[k]) ~= "boolean" then return nil, "planado.rate." .. k .. " must be a boolean" end
        c[k] = r[k]
      end
    end
    if r.per_minute ~= nil then
      if type(r.per_minute) ~= "number" or r.per_minute <= 0 then return nil, "planado.rate.per_minute must be a number > 0" end
      c.per_minute = r.per_minute
    end
    if r.burst ~= nil then
      local b = util.to_int(r.burst)
      if not b or b < 1 then return nil, "planado.rate.burst must be an integer >= 1" end
      c.burst = b
    end
  else
    return nil, "planado.rate must be an object or false"
  end
  -- Any rate update starts with an empty bucket.
  M.state.bucket = { level = 0, t = nil }
  return true
end

-- POST /_sandbox/config {"planado":{...}}
function M.configure(p)
  if type(p) ~= "table" then return nil, "planado must be an object" end
  local ok, err = check_keys(p, { api_key = true, legacy_header = true, page_size = true, page_sizes = true,
    rate = true, webhook = true, print = true }, "planado")
  if not ok then return nil, err end
  local c = M.state.config
  if p.api_key ~= nil then
    if type(p.api_key) ~= "string" or p.api_key == "" then return nil, "planado.api_key must be a non-empty string" end
    c.api_key = p.api_key
  end
  if p.legacy_header ~= nil then
    if type(p.legacy_header) ~= "boolean" then return nil, "planado.legacy_header must be a boolean" end
    c.legacy_header = p.legacy_header
  end
  if p.page_size ~= nil then
    local n = util.to_int(p.page_size)
    if not n or n < 1 or n > 10000 then return nil, "planado.page_size must be 1..10000" end
    c.page_size = n
  end
  if p.page_sizes ~= nil then
    if type(p.page_sizes) ~= "table" then return nil, "planado.page_sizes must be an object" end
    for k, v in pairs(p.page_sizes) do
      if not M.LISTS[k] then return nil, "planado.page_sizes: unknown list '" .. tostring(k) .. "'" end
      if v == null or v == false then
        c.page_sizes[k] = nil
      else
        local n = util.to_int(v)
        if not n or n < 1 or n > 10000 then return nil, "planado.page_sizes." .. k .. " must be 1..10000" end
        c.page_sizes[k] = n
      end
    end
  end
  if p.rate ~= nil then
    ok, err = configure_rate(p.rate)
    if not ok then return nil, err end
  end
  if p.print ~= nil then
    if type(p.print) ~= "table" then return nil, "planado.print must be an object" end
    ok, err = check_keys(p.print, { max_running = true, duration = true }, "planado.print")
    if not ok then return nil, err end
    if p.print.max_running ~= nil then
      local n = util.to_int(p.print.max_running)
      if not n or n < 0 then return nil, "planado.print.max_running must be an integer >= 0" end
      c.print.max_running = n
    end
    if p.print.duration ~= nil then
      if type(p.print.duration) ~= "number" or p.print.duration < 0 then return nil, "planado.print.duration must be >= 0" end
      c.print.duration = p.print.duration
    end
  end
  if p.webhook ~= nil then
    ok, err = hooks.configure(p.webhook)
    if not ok then return nil, err end
  end
  return true
end

function M.describe()
  local c = M.state.config
  local sizes = {}
  for k in pairs(M.LISTS) do sizes[k] = c.page_sizes[k] or c.page_size end
  return { planado = {
    api_key = c.api_key, legacy_header = c.legacy_header, page_size = c.page_size,
    page_sizes = sizes, rate = util.deepcopy(c.rate), print = util.deepcopy(c.print),
    webhook = hooks.describe(),
  } }
end

function M.stats()
  local s = M.state
  return {
    planado_requests = s.requests,
    planado_accepted = s.accepted,
    planado_rate_violations = s.violations,
    planado_events = #store.db.planado_event_log,
    planado_delivery_attempts = hooks.state.attempts,
    planado_pending_deliveries = hooks.pending(),
  }
end

local function page_size(list)
  local c = M.state.config
  return c.page_sizes[list] or c.page_size
end

---------------------------------------------------------------- errors

local PERR = {}

local function perr(status, message)
  error(setmetatable({ status = status, message = message }, PERR), 0)
end

local function errors_body(message)
  return { errors = { { message = message } } }
end
M.errors_body = errors_body

local function not_found(what) perr(404, what .. " not found") end
local function invalid(field, problem) perr(422, field .. ": " .. problem) end

---------------------------------------------------------------- auth and rate

local function one_header(req, name)
  local v = req.headers[name]
  if type(v) == "table" then v = v[1] end
  return v
end

-- "bearer" or "legacy" when the key is right; nil, message otherwise. An
-- Authorization header, when present, is the only one that counts.
local function authenticate(req)
  local c = M.state.config
  local h = one_header(req, "authorization")
  if h ~= nil then
    local key = h:match("^%s*[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
    if key == c.api_key then return "bearer" end
    return nil, key and "Invalid API key" or "Authorization must be 'Bearer <api-key>'"
  end
  local legacy = one_header(req, "x-planado-api-key")
  if legacy ~= nil then
    if not c.legacy_header then return nil, "X-Planado-API-Key is not accepted; use Authorization: Bearer" end
    if legacy == c.api_key then return "legacy" end
    return nil, "Invalid API key"
  end
  return nil, "API key is missing"
end

-- Leaky bucket: the level drains at per_minute/60 per second; a request that
-- would lift it above `burst` is refused (and does not fill it).
local function rate_check()
  local s = M.state
  local r = s.config.rate
  if not r.enabled then return nil end
  ngx.update_time()
  local now = ngx.now()
  local b = s.bucket
  local per_sec = r.per_minute / 60
  if b.t then b.level = math.max(0, b.level - (now - b.t) * per_sec) end
  b.t = now
  if b.level + 1 > r.burst + 1e-9 then
    s.violations = s.violations + 1
    return math.max(1, math.ceil((b.level + 1 - r.burst) / per_sec))
  end
  b.level = b.level + 1
  return nil
end

---------------------------------------------------------------- helpers

local function now_iso()
  ngx.update_time()
  return data.iso(ngx.now())
end

local function ulen(s) return select(2, s:gsub("[^\128-\191]", "")) end

local function str(v, field, max, allow_empty)
  if type(v) ~= "string" then invalid(field, "must be a string") end
  if max and ulen(v) > max then invalid(field, "is too long (maximum is " .. max .. " characters)") end
  if not allow_empty and v == "" then invalid(field, "must not be empty") end
  return v
end

local function obj(v, field)
  if type(v) ~= "table" or (next(v) ~= nil and #v > 0) then invalid(field, "must be an object") end
  return v
end

local function list_of(v, field)
  if type(v) ~= "table" or (next(v) ~= nil and #v == 0) then invalid(field, "must be an array") end
  return v
end

local function sorted(t)
  table.sort(t)
  return json.array(t)
end

local SINGULAR = { territories = "territory", clients = "client", sites = "site", users = "user",
  teams = "team", skills = "skill", templates = "template", job_types = "job type" }

-- A record of coll referenced by {uuid} (or by `alt` key, e.g. name/code).
local function ref_lookup(coll, v, field, alt)
  obj(v, field)
  local db = store.db
  if v.uuid ~= nil then
    local rec = type(v.uuid) == "string" and db["planado_" .. coll][v.uuid:lower()]
    if not rec then invalid(field, "no " .. (SINGULAR[coll] or coll) .. " with uuid " .. tostring(v.uuid)) end
    return rec
  end
  if alt and v[alt] ~= nil then
    for _, rec in ipairs(db.planado_order[coll]) do
      if rec[alt] == v[alt] then return rec end
    end
    invalid(field, "no " .. (SINGULAR[coll] or coll) .. " with " .. alt .. " " .. tostring(v[alt]))
  end
  invalid(field, "uuid is required")
end

---------------------------------------------------------------- tri-state engine

-- A write: ctx = { mode = "create"|"update", work = copy of the record, body,
-- changes = {set, nulled, absent, ignored}, deferred = {fn...} }. Field
-- specs: { nullable = bool (or create_nullable/update_nullable), create_only,
-- set = function(ctx, value, key) } (set writes ctx.work; null writes null
-- unless a spec.null function is given). Nothing touches the stored record
-- until every key validated.
local function new_ctx(mode, work, body)
  return { mode = mode, work = work, body = body, deferred = {},
    changes = { set = arr(), nulled = arr(), absent = arr(), ignored = arr() } }
end

local function add(list, v) list[#list + 1] = v end

local function run_fields(ctx, specs)
  local body = ctx.body
  local keys = {}
  for k in pairs(body) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = body[k]
    local spec = specs[k]
    if spec and spec.create_only and ctx.mode == "update" then
      -- Create-only keys are ignored by updates, but a null for a
      -- non-nullable one is still refused.
      if v == null and not spec.nullable then invalid(k, "must not be null") end
      add(ctx.changes.ignored, k)
    elseif not spec or (spec.skip and spec.skip(ctx)) then
      add(ctx.changes.ignored, k)
    elseif v == null then
      local nullable = spec.nullable
      if ctx.mode == "create" and spec.create_nullable ~= nil then nullable = spec.create_nullable end
      if ctx.mode == "update" and spec.update_nullable ~= nil then nullable = spec.update_nullable end
      if not nullable then invalid(k, "must not be null") end
      if spec.null then spec.null(ctx, k) else ctx.work[k] = null end
      add(ctx.changes.nulled, k)
    else
      spec.set(ctx, v, k)
      add(ctx.changes.set, k)
    end
  end
  for k, spec in pairs(specs) do
    if body[k] == nil and not (spec.create_only and ctx.mode == "update") then add(ctx.changes.absent, k) end
  end
  local ch = ctx.changes
  ch.set, ch.nulled, ch.absent, ch.ignored = sorted(ch.set), sorted(ch.nulled), sorted(ch.absent), sorted(ch.ignored)
end

-- Nested merge into an address object: absent inner keys stay, null ones
-- clear. Inner paths ("address.floor") are added to set/nulled.
local function merge_address(ctx, current, v, key)
  obj(v, key)
  local out = type(current) == "table" and util.deepcopy(current) or data.empty_address()
  local known = {}
  for _, k in ipairs(data.ADDRESS_KEYS) do known[k] = true end
  local inner = {}
  for k in pairs(v) do inner[#inner + 1] = k end
  table.sort(inner)
  for _, k in ipairs(inner) do
    local x = v[k]
    local path = key .. "." .. k
    if not known[k] then
      add(ctx.changes.ignored, path)
    elseif x == null then
      out[k] = null
      add(ctx.changes.nulled, path)
    elseif k == "geolocation" then
      obj(x, path)
      local lat, lon = x.latitude, x.longitude
      if type(lat) ~= "number" or type(lon) ~= "number" or lat < -90 or lat > 90 or lon < -180 or lon > 180 then
        invalid(path, "needs numeric latitude (-90..90) and longitude (-180..180)")
      end
      out[k] = { latitude = lat, longitude = lon }
      add(ctx.changes.set, path)
    else
      if type(x) == "number" then x = tostring(x) end
      out[k] = str(x, path, k == "formatted" and 1000 or 255, true)
      add(ctx.changes.set, path)
    end
  end
  return out
end

local function contacts_value(v, key)
  list_of(v, key)
  local out = arr()
  for i, c in ipairs(v) do
    local f = key .. "[" .. (i - 1) .. "]"
    obj(c, f)
    local value = c.value
    if type(value) == "number" then value = tostring(value) end
    str(value, f .. ".value", 255)
    local ctype = c.type == nil and "phone" or c.type
    if ctype ~= "phone" and ctype ~= "email" then invalid(f .. ".type", "must be phone or email") end
    local name = c.name
    if name == nil then name = null end
    if name ~= null then str(name, f .. ".name", 255, true) end
    out[#out + 1] = { name = name, value = value, type = ctype }
  end
  return out
end

local function unique_external_id(coll, ctx, v, key)
  local s = str(v, key, 500)
  local other = store.db.planado_ext[coll][s]
  if other and other ~= ctx.work.uuid then invalid(key, "has already been taken") end
  ctx.work.external_id = s
end

local function external_id_spec(coll)
  return { create_nullable = false, update_nullable = true,
    set = function(ctx, v, k) unique_external_id(coll, ctx, v, k) end }
end

---------------------------------------------------------------- clients and sites fields

local function name_spec(max)
  return { nullable = true, set = function(ctx, v, k) ctx.work[k] = str(v, k, max, true) end }
end

local CLIENT_FIELDS = {
  external_id = external_id_spec("clients"),
  organization = { nullable = false, set = function(ctx, v, k)
    if type(v) ~= "boolean" then invalid(k, "must be a boolean") end
    if ctx.mode == "update" and v ~= ctx.work.organization then invalid(k, "cannot be changed") end
    ctx.work.organization = v
  end },
  organization_name = name_spec(5000),
  first_name = name_spec(50),
  last_name = name_spec(50),
  middle_name = name_spec(50),
  site_address = { nullable = true, set = function(ctx, v, k)
    ctx.work.site_address = merge_address(ctx, ctx.work.site_address, v, k)
  end },
  contacts = { nullable = false, set = function(ctx, v, k) ctx.work.contacts = contacts_value(v, k) end },
}

local function client_finish(work)
  if work.organization then
    if type(work.organization_name) ~= "string" or work.organization_name == "" then
      invalid("organization_name", "is required for an organization")
    end
  else
    local any = false
    for _, k in ipairs({ "first_name", "last_name", "middle_name" }) do
      if type(work[k]) == "string" and work[k] ~= "" then any = true end
    end
    if not any then invalid("first_name", "a person needs a first, last or middle name") end
  end
  work.name = data.client_name(work)
end

local SITE_FIELDS = {
  external_id = external_id_spec("sites"),
  name = { nullable = false, set = function(ctx, v, k) ctx.work.name = str(v, k, 300) end },
  description = { nullable = true, set = function(ctx, v, k) ctx.work.description = str(v, k, 1000, true) end },
  client = { nullable = true, set = function(ctx, v, k)
    local c = ref_lookup("clients", v, k, "external_id")
    ctx.work.client = { uuid = c.uuid, external_id = c.external_id }
  end },
  territory = { nullable = true, set = function(ctx, v, k)
    local t = ref_lookup("territories", v, k, "name")
    ctx.work.territory = { uuid = t.uuid, name = t.name }
  end },
  address = { nullable = false, set = function(ctx, v, k) ctx.work.address = merge_address(ctx, ctx.work.address, v, k) end },
  contacts = { nullable = false, set = function(ctx, v, k) ctx.work.contacts = contacts_value(v, k) end },
}

local function site_finish(work)
  if type(work.name) ~= "string" or work.name == "" then invalid("name", "is required") end
end

---------------------------------------------------------------- jobs fields

local STARTED = { started = true, suspended = true, finished = true }

local function assignee_value(v, key)
  obj(v, key)
  local db = store.db
  if v.worker ~= nil and v.worker ~= null then
    local u = ref_lookup("users", v.worker, key .. ".worker", "email")
    return { worker = data.user_ref(u) }, u.uuid
  elseif v.team ~= nil and v.team ~= null then
    local t = ref_lookup("teams", v.team, key .. ".team", "name")
    return { team = { uuid = t.uuid, name = t.name } }, t.uuid
  elseif type(v.uuid) == "string" then
    local u = db.planado_users[v.uuid:lower()]
    if u then return { worker = data.user_ref(u) }, u.uuid end
    local t = db.planado_teams[v.uuid:lower()]
    if t then return { team = { uuid = t.uuid, name = t.name } }, t.uuid end
    invalid(key, "no worker or team with uuid " .. v.uuid)
  end
  invalid(key, "needs worker {uuid} or team {uuid}")
end

local function not_started(ctx, k)
  if ctx.mode == "update" and STARTED[ctx.work.status] then
    invalid(k, "cannot be changed once the job has started")
  end
end

local function resolutions_value(ctx, v, key)
  list_of(v, key)
  local db = store.db
  local out, good, bad = arr(), false, false
  for i, r in ipairs(v) do
    local f = key .. "[" .. (i - 1) .. "]"
    obj(r, f)
    local rec
    if r.uuid ~= nil then
      rec = type(r.uuid) == "string" and db.planado_resolutions[r.uuid:lower()]
      if not rec then invalid(f, "no resolution with uuid " .. tostring(r.uuid)) end
    else
      str(r.name, f .. ".name", 255)
      if type(r.successful) ~= "boolean" then invalid(f .. ".successful", "must be a boolean") end
      for _, x in ipairs(db.planado_order.resolutions) do
        if x.name == r.name and x.successful == r.successful then rec = x end
      end
      if not rec then
        -- Created when the write commits.
        rec = { uuid = nil, name = r.name, successful = r.successful }
        ctx.deferred[#ctx.deferred + 1] = function()
          rec.uuid = data.next_uuid(store.db, "resolution")
          data.insert(store.db, "resolutions", rec)
        end
      end
    end
    if rec.successful then good = true else bad = true end
    out[#out + 1] = rec
  end
  if not (good and bad) then invalid(key, "needs at least one successful and one unsuccessful resolution") end
  -- Refs are built after the deferred inserts gave the new ones a uuid.
  ctx.deferred[#ctx.deferred + 1] = function()
    local refs = arr()
    for i, rec in ipairs(out) do refs[i] = data.resolution_ref(rec) end
    ctx.work.possible_resolutions = refs
  end
end

local DATA_TYPES = {
  string = function(x) return type(x) == "string" end,
  integer = function(x) return type(x) == "number" and x % 1 == 0 end,
  number = function(x) return type(x) == "number" end,
  boolean = function(x) return type(x) == "boolean" end,
}

local function fields_value(ctx, v, key)
  list_of(v, key)
  local current = util.deepcopy(ctx.work[key])
  for i, f in ipairs(v) do
    local path = key .. "[" .. (i - 1) .. "]"
    obj(f, path)
    local hit
    for _, cf in ipairs(current) do
      if (f.uuid ~= nil and cf.uuid == f.uuid) or (f.uuid == nil and f.name ~= nil and cf.name == f.name) then hit = cf end
    end
    if not hit then invalid(path, "no " .. (key == "report_fields" and "report" or "custom") .. " field " .. tostring(f.uuid or f.name)) end
    local value = f.value
    if value == nil then value = null end
    local check = DATA_TYPES[hit.data_type]
    if value ~= null and check and not check(value) then invalid(path .. ".value", "must be a " .. hit.data_type) end
    hit.value = value
  end
  ctx.work[key] = current
end

local function new_client_ref(ctx, v, key)
  -- A new-client object: created (client_created event) when the write commits.
  local cctx = new_ctx("create", data.client_record(0, "", {}), v)
  run_fields(cctx, CLIENT_FIELDS)
  client_finish(cctx.work)
  local ref = { uuid = null, external_id = cctx.work.external_id }
  ctx.deferred[#ctx.deferred + 1] = function()
    local c = M.create_record("client", cctx, { source = "api", nested_in = key })
    ref.uuid = c.uuid
  end
  return ref
end

local function new_site_ref(ctx, v, key)
  local sctx = new_ctx("create", data.site_record(0, "", {}), v)
  run_fields(sctx, SITE_FIELDS)
  site_finish(sctx.work)
  local ref = { uuid = null, external_id = sctx.work.external_id }
  ctx.deferred[#ctx.deferred + 1] = function()
    local s = M.create_record("site", sctx, { source = "api", nested_in = key })
    ref.uuid = s.uuid
  end
  return ref
end

local JOB_FIELDS = {
  external_id = external_id_spec("jobs"),
  external_order_id = { nullable = true, set = function(ctx, v, k) ctx.work[k] = str(v, k, 500) end },
  description = { nullable = true, set = function(ctx, v, k) ctx.work[k] = str(v, k, 15000, true) end },
  scheduled_at = { nullable = true, set = function(ctx, v, k)
    local t = data.parse_time(v)
    if not t then invalid(k, "must be an ISO 8601 datetime") end
    ctx.work[k] = data.iso(t)
  end },
  scheduled_duration = { nullable = true, set = function(ctx, v, k)
    obj(v, k)
    local h, m = v.hours or 0, v.minutes or 0
    if type(h) ~= "number" or type(m) ~= "number" or h % 1 ~= 0 or m % 1 ~= 0 or h < 0 or m < 0
      or (v.hours == nil and v.minutes == nil) then
      invalid(k, "must be {\"minutes\": N} or {\"hours\": H, \"minutes\": M}")
    end
    ctx.work[k] = { minutes = h * 60 + m }
  end },
  assignee = {
    nullable = true,
    skip = function(ctx) return ctx.body.assignees ~= nil end, -- ignored if assignees is present
    set = function(ctx, v, k)
      not_started(ctx, k)
      local a, uuid = assignee_value(v, k)
      ctx.work.assignee = a
      ctx.work.assignees = arr({ { uuid = uuid, access = "edit" } })
    end,
    null = function(ctx, k)
      not_started(ctx, k)
      ctx.work.assignee = null
      ctx.work.assignees = arr()
    end,
  },
  assignees = { nullable = false, set = function(ctx, v, k)
    not_started(ctx, k)
    list_of(v, k)
    local out, edit = arr(), nil
    for i, a in ipairs(v) do
      local f = k .. "[" .. (i - 1) .. "]"
      local ref, uuid = assignee_value(a, f)
      local access = a.access == nil and "edit" or a.access
      if access ~= "edit" and access ~= "view" then invalid(f .. ".access", "must be edit or view") end
      if access == "edit" then
        if edit then invalid(k, "exactly one assignee must have edit access") end
        edit = ref
      end
      out[#out + 1] = { uuid = uuid, access = access }
    end
    if #out > 0 and not edit then invalid(k, "exactly one assignee must have edit access") end
    ctx.work.assignees = out
    ctx.work.assignee = edit or null
  end },
  possible_resolutions = { nullable = false, set = function(ctx, v, k)
    not_started(ctx, k)
    resolutions_value(ctx, v, k)
  end },
  address = { nullable = false, set = function(ctx, v, k) ctx.work.address = merge_address(ctx, ctx.work.address, v, k) end },
  contacts = { nullable = false, set = function(ctx, v, k) ctx.work.contacts = contacts_value(v, k) end },
  client = { nullable = true, set = function(ctx, v, k)
    obj(v, k)
    if v.uuid ~= nil or (v.external_id ~= nil and store.db.planado_ext.clients[v.external_id]) then
      local c = ref_lookup("clients", v, k, "external_id")
      ctx.work.client = { uuid = c.uuid, external_id = c.external_id }
    else
      ctx.work.client = new_client_ref(ctx, v, k)
    end
  end },
  site = { nullable = true, set = function(ctx, v, k)
    obj(v, k)
    if v.uuid ~= nil or (v.external_id ~= nil and store.db.planado_ext.sites[v.external_id]) then
      local s = ref_lookup("sites", v, k, "external_id")
      ctx.work.site = { uuid = s.uuid, external_id = s.external_id }
    else
      ctx.work.site = new_site_ref(ctx, v, k)
    end
  end },
  territory = { nullable = true, set = function(ctx, v, k)
    local t = ref_lookup("territories", v, k, "name")
    ctx.work.territory = { uuid = t.uuid, name = t.name }
  end },
  skills = { nullable = false, set = function(ctx, v, k)
    list_of(v, k)
    local out = arr()
    for i, s in ipairs(v) do
      local rec = ref_lookup("skills", s, k .. "[" .. (i - 1) .. "]", "name")
      out[#out + 1] = { uuid = rec.uuid, name = rec.name }
    end
    ctx.work.skills = out
  end },
  custom_fields = { nullable = false, set = fields_value },
  report_fields = { nullable = false, set = fields_value },
  template = { nullable = false, create_only = true, set = function(ctx, v, k)
    local t = ref_lookup("templates", v, k, "name")
    ctx.work.template = { uuid = t.uuid, name = t.name }
    ctx.template = t
  end },
  job_type = { nullable = true, create_only = true, set = function(ctx, v, k)
    local t = ref_lookup("job_types", v, k, "code")
    ctx.work.type = { uuid = t.uuid, code = t.code }
  end, null = function(ctx) ctx.work.type = data.default_type(store.db) end },
}

-- After the keys: template defaults (for keys the body left out) and the
-- posted/scheduled status.
local function job_finish(ctx)
  local w, t, body = ctx.work, ctx.template, ctx.body
  if t then
    if body.job_type == nil and t.type_uuid then
      local jt = store.db.planado_job_types[t.type_uuid]
      if jt then w.type = { uuid = jt.uuid, code = jt.code } end
    end
    if body.description == nil and t.description ~= null then w.description = t.description end
    if body.scheduled_duration == nil and t.scheduled_duration ~= null then w.scheduled_duration = util.deepcopy(t.scheduled_duration) end
    if body.assignee == nil and body.assignees == nil and type(t.assignee) == "table" and t.assignee.worker then
      local u = store.db.planado_users[t.assignee.worker.uuid]
      if u then
        w.assignee = { worker = data.user_ref(u) }
        w.assignees = arr({ { uuid = u.uuid, access = "edit" } })
      end
    end
  end
  if w.status == "posted" or w.status == "scheduled" then
    w.status = (w.scheduled_at ~= null and w.assignee ~= null) and "scheduled" or "posted"
  end
end

---------------------------------------------------------------- writes

local ENTITY = {
  job = { coll = "jobs", fields = JOB_FIELDS, full = data.job_full, finish = job_finish },
  client = { coll = "clients", fields = CLIENT_FIELDS, full = function(_, r) return data.public(r) end,
    finish = function(ctx) client_finish(ctx.work) end },
  site = { coll = "sites", fields = SITE_FIELDS, full = data.site_full, finish = function(ctx) site_finish(ctx.work) end },
}

local function run_deferred(ctx)
  for _, fn in ipairs(ctx.deferred) do fn() end
end

local function history_entry(rec, action, ctx, info)
  local ch = ctx and ctx.changes or {}
  local h = {
    action = action, version = rec.version, time = ngx.now(), source = info.source or "api",
    set = ch.set or arr(), nulled = ch.nulled or arr(), absent = ch.absent or arr(), ignored = ch.ignored or arr(),
    notify_assignees = info.notify_assignees or null, nested_in = info.nested_in,
  }
  rec._history[#rec._history + 1] = h
  return h
end

-- Payload of a history event: the changed top-level keys with their new values.
local function change_payload(full, ch)
  local p = {}
  for _, list in ipairs({ ch.set, ch.nulled }) do
    for _, k in ipairs(list) do
      local top = k:match("^([^%.]+)")
      if full[top] ~= nil then p[top] = full[top] end
    end
  end
  return p
end

-- Commits a validated create (ctx.work is the new record without uuid).
function M.create_record(kind, ctx, info)
  local e = ENTITY[kind]
  local db = store.db
  run_deferred(ctx)
  local rec = ctx.work
  local uuid, n = data.next_uuid(db, kind)
  rec.uuid = uuid
  if kind == "job" then rec.serial_no = n end
  local ts = now_iso()
  rec.created_at, rec.updated_at, rec.version = ts, ts, 1
  rec._history, rec._events = {}, {}
  data.insert(db, e.coll, rec)
  local h = history_entry(rec, "create", ctx, info)
  local full = e.full(db, rec)
  local ev = hooks.emit(kind, kind .. "_created", rec, full, nil, util.deepcopy(full), info.source)
  h.event_uuid = ev.uuid
  return rec
end

-- Commits a validated update of rec from ctx.work. Bumps the version and
-- emits an event when a key was set or nulled.
local function commit_update(kind, rec, ctx, info, event_type)
  local e = ENTITY[kind]
  local db = store.db
  local ch = ctx.changes
  if #ch.set == 0 and #ch.nulled == 0 and not info.force then return false end
  run_deferred(ctx)
  local previous = e.full(db, rec)
  local old_ext = rec.external_id
  for k in pairs(rec) do
    if type(k) == "string" and k:sub(1, 1) ~= "_" and ctx.work[k] == nil then rec[k] = nil end
  end
  for k, v in pairs(ctx.work) do
    if type(k) ~= "string" or k:sub(1, 1) ~= "_" then rec[k] = v end
  end
  rec.version = rec.version + 1
  rec.updated_at = now_iso()
  data.index_external_id(db, e.coll, rec, old_ext)
  local h = history_entry(rec, info.action or "update", ctx, info)
  local full = e.full(db, rec)
  local ev = hooks.emit(kind, event_type or (kind .. "_updated"), rec, full, previous, change_payload(full, ch), info.source)
  h.event_uuid = ev.uuid
  return true
end

local working_copy = util.public

local function request_body(req)
  local b = req.json
  if type(b) ~= "table" then perr(400, "Request body must be a JSON object") end
  return b
end

local function notify_header(req)
  return one_header(req, "x-planado-notify-assignees")
end

-- Creates an entity from the request body; returns the record and ctx.
local function create(kind, req, extra)
  local e = ENTITY[kind]
  local body = request_body(req)
  local work
  if kind == "job" then
    work = data.job_record(store.db, 0, "", {})
  elseif kind == "client" then
    work = data.client_record(0, "", {})
  else
    work = data.site_record(0, "", {})
  end
  work._history, work._events = nil, nil
  local ctx = new_ctx("create", work, body)
  for k, v in pairs(extra or {}) do
    if body[k] == nil then body[k] = v end
  end
  run_fields(ctx, e.fields)
  e.finish(ctx)
  local rec = M.create_record(kind, ctx, { source = "api", notify_assignees = notify_header(req) })
  return rec, ctx
end

local function update(kind, rec, req)
  local e = ENTITY[kind]
  local body = request_body(req)
  local ctx = new_ctx("update", working_copy(rec), body)
  run_fields(ctx, e.fields)
  e.finish(ctx)
  commit_update(kind, rec, ctx, { source = "api", notify_assignees = notify_header(req) })
  return ctx
end

local function log_changes(req, kind, action, rec, ctx)
  req.planado_log = {
    entity = { type = kind, uuid = rec.uuid, version = rec.version, action = action },
    changes = ctx and ctx.changes or null,
  }
end

---------------------------------------------------------------- paging

-- Seq of the `after` uuid in coll (live record or tombstone).
local function after_seq(coll, after)
  local db = store.db
  local rec = db["planado_" .. coll][after] or db["planado_" .. coll][after:lower()]
  if rec then return rec._seq end
  local t = db.planado_tombstones[after] or db.planado_tombstones[after:lower()]
  if t and t.coll == coll then return t.seq end
  invalid("after", "unknown uuid " .. after)
end

local function after_param(req)
  local a = util.query_value(req.query, "after")
  if type(a) ~= "string" or a == "" then return nil end
  return a
end

-- One page of coll: newest first when desc. filter(rec) selects, render(rec)
-- shapes. Keyset: the items after (in list order) the `after` record.
local function list_page(req, coll, opts)
  local db = store.db
  local order = db.planado_order[coll]
  local size = page_size(opts.list or coll)
  local after = after_param(req)
  local i
  if after then
    local pos, found = data.position(order, after_seq(coll, after))
    if opts.desc then i = pos - 1 else i = found and pos + 1 or pos end
  else
    i = opts.desc and #order or 1
  end
  local step = opts.desc and -1 or 1
  local out = arr()
  while i >= 1 and i <= #order and #out < size do
    local r = order[i]
    if not opts.filter or opts.filter(r) then out[#out + 1] = opts.render(r) end
    i = i + step
  end
  return out
end

---------------------------------------------------------------- routes

local R = router.new()
M.router = R

local function route(method, pattern, handler, opts)
  opts = opts or {}
  if opts.body == nil then opts.body = (method == "POST" or method == "PATCH") and "json" or "none" end
  return R:add(method, pattern, handler, opts)
end

local function find_or_404(coll, ref, what)
  local rec = data.find(store.db, coll, ref)
  if not rec then not_found(what) end
  return rec
end

-- jobs

route("POST", "/jobs", function(req)
  local job, ctx = create("job", req)
  log_changes(req, "job", "create", job, ctx)
  return 201, { job_uuid = job.uuid }
end)

local function query_list(req, name)
  local v = req.query[name]
  if v == nil or v == true then return nil end
  if type(v) == "table" then return v end
  return { v }
end

local function query_time(req, name)
  local v = util.query_value(req.query, name)
  if v == nil or v == true or v == "" then return nil end
  local t = data.parse_time(v)
  if not t then invalid(name, "must be an ISO 8601 datetime") end
  return t
end

route("GET", "/jobs", function(req)
  local statuses
  for _, name in ipairs({ "status[]", "status" }) do
    local l = query_list(req, name)
    if l then
      statuses = statuses or {}
      for _, s in ipairs(l) do for x in tostring(s):gmatch("[^,]+") do statuses[x] = true end end
    end
  end
  local t_after, t_before = query_time(req, "scheduled_at[after]"), query_time(req, "scheduled_at[before]")
  local worker = util.query_value(req.query, "assignee[worker_uuid]")
  local team = util.query_value(req.query, "assignee[team_uuid]")
  local order_id = util.query_value(req.query, "external_order_id")
  local function has_assignee(j, uuid, key)
    if type(j.assignee) == "table" and j.assignee[key] and j.assignee[key].uuid == uuid then return true end
    for _, a in ipairs(j.assignees or {}) do if a.uuid == uuid then return true end end
    return false
  end
  local filter = function(j)
    if statuses and not statuses[j.status] then return false end
    if t_after or t_before then
      local t = j.scheduled_at ~= null and data.parse_time(j.scheduled_at)
      if not t then return false end
      if t_after and t < t_after then return false end
      if t_before and t > t_before then return false end
    end
    if type(worker) == "string" and not has_assignee(j, worker, "worker") then return false end
    if type(team) == "string" and not has_assignee(j, team, "team") then return false end
    if type(order_id) == "string" and j.external_order_id ~= order_id then return false end
    return true
  end
  local db = store.db
  return 200, { jobs = list_page(req, "jobs", { desc = true, filter = filter,
    render = function(j) return data.job_compact(db, j) end }) }
end)

route("GET", "/jobs/{ref}", function(_, p)
  local job = find_or_404("jobs", p.ref, "Job")
  return 200, { job = data.job_full(store.db, job) }
end)

route("PATCH", "/jobs/{ref}", function(req, p)
  local job = find_or_404("jobs", p.ref, "Job")
  local ctx = update("job", job, req)
  log_changes(req, "job", "update", job, ctx)
  return 200, { job_uuid = job.uuid }
end)

route("DELETE", "/jobs/{uuid}", function(req, p)
  local db = store.db
  local job = data.is_uuid(p.uuid) and db.planado_jobs[p.uuid:lower()]
  if not job then not_found("Job") end
  local previous = data.job_full(db, job)
  data.remove(db, "jobs", job)
  db.planado_tombstones[job.uuid].record = job
  job.version = job.version + 1
  job.updated_at = now_iso()
  local h = history_entry(job, "delete", nil, { source = "api", notify_assignees = notify_header(req) })
  local full = data.job_full(db, job)
  local ev = hooks.emit("job", "job_deleted", job, full, previous, {}, "api")
  h.event_uuid = ev.uuid
  log_changes(req, "job", "delete", job, nil)
  return 200, { job_uuid = job.uuid }
end, { body = "none" })

route("GET", "/jobs/{ref}/history", function(req, p)
  local job = find_or_404("jobs", p.ref, "Job")
  local after = 0
  local a = util.query_value(req.query, "after")
  if a ~= nil and a ~= true and a ~= "" then
    after = util.to_int(a)
    if not after or after < 0 then invalid("after", "must be a version number") end
  end
  local out, size = arr(), page_size("history")
  for _, ev in ipairs(job._events) do
    if ev.version > after and #out < size then
      out[#out + 1] = { version = ev.version, uuid = ev.uuid, type = ev.event_type,
        payload = util.deepcopy(ev.payload), context = util.deepcopy(ev.context) }
    end
  end
  return 200, { events = out }
end)

-- clients and sites (upsert)

local function upsert(kind, coll, req, ref)
  local rec = data.find(store.db, coll, ref)
  if rec then
    local ctx = update(kind, rec, req)
    log_changes(req, kind, "update", rec, ctx)
    return 200, rec
  end
  if data.is_uuid(ref) then not_found(kind == "client" and "Client" or "Site") end
  -- An unknown external_id creates the record (external_id = the ref
  -- unless the body gives one).
  local created, ctx = create(kind, req, { external_id = ref })
  log_changes(req, kind, "create", created, ctx)
  return 201, created
end

route("POST", "/clients", function(req)
  local c, ctx = create("client", req)
  log_changes(req, "client", "create", c, ctx)
  return 201, { client_uuid = c.uuid }
end)

route("GET", "/clients", function(req)
  return 200, { clients = list_page(req, "clients", { desc = true, render = data.public }) }
end)

route("GET", "/clients/{ref}", function(_, p)
  return 200, { client = data.public(find_or_404("clients", p.ref, "Client")) }
end)

route("PATCH", "/clients/{ref}", function(req, p)
  local status, c = upsert("client", "clients", req, p.ref)
  return status, { client_uuid = c.uuid }
end)

route("POST", "/sites", function(req)
  local s, ctx = create("site", req)
  log_changes(req, "site", "create", s, ctx)
  return 201, { site_uuid = s.uuid }
end)

route("GET", "/sites", function(req)
  local db = store.db
  return 200, { sites = list_page(req, "sites", { desc = true, render = function(s) return data.site_full(db, s) end }) }
end)

route("GET", "/sites/{ref}", function(_, p)
  return 200, { site = data.site_full(store.db, find_or_404("sites", p.ref, "Site")) }
end)

route("PATCH", "/sites/{ref}", function(req, p)
  local status, s = upsert("site", "sites", req, p.ref)
  return status, { site_uuid = s.uuid }
end)

-- reference lists (oldest first)

local function simple_list(path, coll, key, render)
  route("GET", path, function(req)
    return 200, { [key] = list_page(req, coll, { list = key, render = render or data.public }) }
  end)
end

simple_list("/job_types", "job_types", "job_types")
simple_list("/templates", "templates", "templates")
simple_list("/teams", "teams", "teams")
simple_list("/users", "users", "users")
simple_list("/skills", "skills", "skills")
simple_list("/catalog/services", "services", "services")
simple_list("/catalog/products", "products", "products")
simple_list("/webhooks", "webhooks", "webhooks", hooks.webhook_view)

route("GET", "/templates/{uuid}", function(_, p)
  local t = data.is_uuid(p.uuid) and store.db.planado_templates[p.uuid:lower()]
  if not t then not_found("Template") end
  return 200, { template = data.public(t) }
end)

route("POST", "/users", function()
  perr(403, "Creating users through the API is restricted: contact support to enable it")
end)

local function named_ref(coll, kind, v, field)
  if v == nil or v == null then return null end
  obj(v, field)
  local name = str(v.name, field .. ".name", 250)
  local db = store.db
  for _, r in ipairs(db.planado_order[coll] or {}) do
    if r.name == name then return r.uuid end
  end
  for _, r in pairs(db["planado_" .. coll]) do
    if r.name == name then return r.uuid end
  end
  local rec = { uuid = data.next_uuid(db, kind), name = name }
  data.insert(db, coll, rec)
  return rec.uuid
end

local function catalog_item(req, kind)
  local b = request_body(req)
  local rec = {
    name = str(b.name, "name", 250),
    description = null, external_id = null, price_default = null, archived = false, currency = "rub",
  }
  if b.description ~= nil and b.description ~= null then rec.description = str(b.description, "description", 500, true) end
  if b.external_id ~= nil and b.external_id ~= null then rec.external_id = str(b.external_id, "external_id", 500) end
  if b.price_default ~= nil and b.price_default ~= null then
    if type(b.price_default) ~= "number" then invalid("price_default", "must be a number") end
    rec.price_default = b.price_default
  end
  if kind == "product" then
    if b.unit == nil or b.unit == null then invalid("unit", "is required") end
    obj(b.unit, "unit")
    str(b.unit.name, "unit.name", 250)
    if b.gtin ~= nil and b.gtin ~= null then rec.gtin = str(b.gtin, "gtin", 50) else rec.gtin = null end
  end
  -- Validated; now the side effects.
  rec.category_uuid = named_ref("categories", "category", b.category, "category")
  if kind == "product" then rec.unit_uuid = named_ref("units", "unit", b.unit, "unit") end
  rec.uuid = data.next_uuid(store.db, kind)
  data.insert(store.db, kind .. "s", rec)
  return rec
end

route("POST", "/catalog/services", function(req)
  return 201, { service_uuid = catalog_item(req, "service").uuid }
end)

route("POST", "/catalog/products", function(req)
  return 201, { product_uuid = catalog_item(req, "product").uuid }
end)

-- webhooks (read only; registered through the control API)

route("GET", "/webhooks/{uuid}/requests", function(req, p)
  local db = store.db
  local wh = db.planado_webhooks[p.uuid] or db.planado_webhooks[p.uuid:lower()]
  if not wh then not_found("Webhook") end
  local after = after_param(req)
  local started = after == nil
  local out, size = arr(), page_size("requests")
  local seen = false
  for _, d in ipairs(db.planado_deliveries) do
    if d.webhook_uuid == wh.uuid then
      if started then
        if #out >= size then break end
        out[#out + 1] = hooks.request_view(d)
      elseif d.uuid == after then
        started, seen = true, true
      end
    end
  end
  if after and not seen then invalid("after", "unknown uuid " .. after) end
  return 200, { requests = out }
end)

-- print

route("POST", "/print/requests", function(req)
  local b = request_body(req)
  local db = store.db
  obj(b.job, "job")
  local job = type(b.job.uuid) == "string" and db.planado_jobs[b.job.uuid:lower()]
  if not job then invalid("job.uuid", "no job with uuid " .. tostring(b.job.uuid)) end
  if b.job.attach_to_custom_field ~= nil and b.job.attach_to_custom_field ~= null then
    obj(b.job.attach_to_custom_field, "job.attach_to_custom_field")
    str(b.job.attach_to_custom_field.uuid, "job.attach_to_custom_field.uuid", 36)
  end
  obj(b.print_template, "print_template")
  str(b.print_template.uuid, "print_template.uuid", 36)
  ngx.update_time()
  local now = ngx.now()
  local pc = M.state.config.print
  local running = 0
  for _, pr in pairs(db.planado_print_requests) do
    if now - pr.time < pc.duration then running = running + 1 end
  end
  if running >= pc.max_running then
    perr(429, "Too many print requests in progress (at most " .. pc.max_running .. ")")
  end
  local uuid = data.next_uuid(db, "print_request")
  db.planado_print_requests[uuid] = { uuid = uuid, job_uuid = job.uuid, print_template_uuid = b.print_template.uuid,
    attach_to_custom_field = b.job.attach_to_custom_field or null, time = now }
  return 201, { uuid = uuid }
end)

---------------------------------------------------------------- pipeline

local function parse_body(req, r)
  if r.body ~= "json" then
    req.json = {}
    return
  end
  if req.body:match("^%s*$") then
    req.json = {}
    return
  end
  local v = json.decode(req.body)
  if v == nil then perr(400, "Invalid JSON in request body") end
  -- cjson decodes [] like {}: look at the text.
  if type(v) ~= "table" or (next(v) ~= nil and #v > 0) or req.body:match("^%s*%[") then
    perr(400, "Request body must be a JSON object")
  end
  req.json = v
end

local JSON_HEADERS = { ["Content-Type"] = util.JSON_TYPE }

local function answer(status, body, headers)
  local h = { ["Content-Type"] = util.JSON_TYPE }
  for k, v in pairs(headers or {}) do h[k] = v end
  return status, json.encode(body), h
end

-- Log fields known before the pipeline runs.
function M.log_fields(req)
  return { notify_assignees = notify_header(req) or null }
end

-- Answers one request under /planado/v2 (req.path is the rest). Returns
-- status, body text, headers and extra log fields.
function M.handle(req)
  local extra = {}
  local mode, why = authenticate(req)
  extra.auth = mode or null
  if not mode then
    local s, b, h = answer(401, errors_body(why))
    return s, b, h, extra
  end
  local retry = rate_check()
  if retry then
    extra.rate_limited = true
    local rc = M.state.config.rate
    if rc.text then
      return 200, "Rate Limit Exceeded", { ["Content-Type"] = "text/plain" }, extra
    end
    local s, b, h = answer(429, errors_body("Rate Limit Exceeded"),
      rc.retry_after and { ["Retry-After"] = tostring(retry) } or nil)
    return s, b, h, extra
  end
  M.state.accepted = M.state.accepted + 1

  local r, params = R:match(req.method, req.path)
  if not r then
    local s, b, h = answer(404, errors_body("Not found: " .. req.method .. " " .. req.path))
    return s, b, h, extra
  end
  local okp, status, body = pcall(function()
    parse_body(req, r)
    return r.handler(req, params)
  end)
  if req.planado_log then
    for k, v in pairs(req.planado_log) do extra[k] = v end
  end
  if not okp then
    local e = status
    if getmetatable(e) == PERR then
      local s, b, h = answer(e.status, errors_body(e.message))
      return s, b, h, extra
    end
    ngx.log(ngx.ERR, "planado handler error on ", req.method, " ", req.path, ": ", tostring(e))
    local s, b, h = answer(500, errors_body("Internal server error"))
    return s, b, h, extra
  end
  local s, b, h = answer(status, body)
  return s, b, h, extra
end
M.JSON_HEADERS = JSON_HEADERS

---------------------------------------------------------------- control (/_sandbox/planado/...)

local function creply(status, value)
  return util.send_json(status, value)
end

local function cbad(msg, status)
  return creply(status or 400, { result = "fail", error = msg })
end

local cbody = util.json_object

-- POST /_sandbox/planado/jobs/{ref}/start|finish: a change made in the web
-- UI or the mobile app (context.source "web").
local function web_transition(req, ref, action)
  local db = store.db
  local job = data.find(db, "jobs", ref)
  if not job then return cbad("job not found", 404) end
  local b = cbody(req)
  if not b then return cbad("body must be a JSON object") end
  local ctx = new_ctx("update", working_copy(job), {})
  local w = ctx.work
  local ts = now_iso()
  if action == "start" then
    if STARTED[job.status] then return cbad("job is already " .. job.status) end
    w.status = "started"
    w.timestamps.started_at = ts
    ctx.changes.set = arr({ "status", "timestamps" })
  else
    if job.status == "finished" then return cbad("job is already finished") end
    local spec = b.resolution
    if spec == nil or spec == null then spec = { name = "Done", successful = true } end
    if type(spec) ~= "table" then return cbad("resolution must be an object") end
    local res
    if spec.uuid then
      res = db.planado_resolutions[spec.uuid]
      if not res then return cbad("unknown resolution uuid") end
    else
      if type(spec.name) ~= "string" then return cbad("resolution needs uuid or name") end
      local successful = spec.successful ~= false
      for _, r in ipairs(db.planado_order.resolutions) do
        if r.name == spec.name and r.successful == successful then res = r end
      end
      if not res then
        res = { uuid = data.next_uuid(db, "resolution"), name = spec.name, successful = successful }
        data.insert(db, "resolutions", res)
      end
    end
    local comment = b.comment
    if comment ~= nil and comment ~= null and type(comment) ~= "string" then return cbad("comment must be a string") end
    w.status = "finished"
    w.resolution = { uuid = res.uuid, name = res.name, successful = res.successful, comment = comment or null }
    if w.timestamps.started_at == null then w.timestamps.started_at = ts end
    w.timestamps.finished_at = ts
    ctx.changes.set = arr({ "resolution", "status", "timestamps" })
  end
  commit_update("job", job, ctx, { source = "web", action = action, force = true }, "job_" .. action .. "ed")
  return creply(200, { result = "success", job = data.job_full(db, job) })
end

local filtered = outbound.filtered

-- Dispatch of /_sandbox/planado/... (path without the /_sandbox prefix and
-- without trailing slashes). Returns true when it answered.
function M.control(req, path)
  local m = req.method
  if hooks.receiver:dispatch(req, path, "/planado") then return true end
  if path == "/planado/webhooks" then
    if m == "POST" then
      local b = cbody(req)
      if not b then return cbad("body must be a JSON object") or true end
      local wh, err = hooks.register(b)
      if not wh then return cbad(err) or true end
      return creply(200, { result = "success", webhook = hooks.webhook_view(wh) }) or true
    elseif m == "GET" then
      local out = json.array()
      for _, wh in ipairs(store.db.planado_order.webhooks) do out[#out + 1] = hooks.webhook_view(wh) end
      return creply(200, { result = "success", webhooks = out }) or true
    end
  end
  local wh_uuid = path:match("^/planado/webhooks/([%x%-]+)$")
  if wh_uuid and m == "DELETE" then
    if not hooks.unregister(wh_uuid) then return cbad("webhook not found", 404) or true end
    return creply(200, { result = "success" }) or true
  end
  if path == "/planado/webhooks/replay" and m == "POST" then
    local b = cbody(req)
    if not b or type(b.event_uuid) ~= "string" then return cbad("body must be {\"event_uuid\":\"...\"}") or true end
    if b.webhook_uuid ~= nil and type(b.webhook_uuid) ~= "string" then return cbad("webhook_uuid must be a string") or true end
    if b.delay ~= nil and (type(b.delay) ~= "number" or b.delay < 0 or b.delay > 3600) then return cbad("delay must be 0..3600") or true end
    local n, err = hooks.replay(b.event_uuid, b.webhook_uuid, b.delay)
    if not n then return cbad(err, err:match("^unknown") and 404 or 400) or true end
    return creply(200, { result = "success", deliveries = n }) or true
  end
  if path == "/planado/webhooks/flush" and m == "POST" then
    return outbound.flush_endpoint(req, hooks) or true
  end
  if path == "/planado/deliveries" then
    if m == "GET" then
      local list = filtered(store.db.planado_deliveries, req, hooks.delivery_view,
        { "event_uuid", "webhook_uuid", "entity_uuid", "event_type" })
      return creply(200, { result = "success", pending = hooks.pending(), deliveries = list }) or true
    elseif m == "DELETE" then
      store.db.planado_deliveries = {}
      return creply(200, { result = "success" }) or true
    end
  end
  if path == "/planado/events" and m == "GET" then
    local list = filtered(store.db.planado_event_log, req, hooks.event_view,
      { "entity_uuid", "event_type", "entity_type" })
    return creply(200, { result = "success", events = list }) or true
  end
  local ref, action = path:match("^/planado/jobs/([^/]+)/(%a+)$")
  if ref and m == "POST" and (action == "start" or action == "finish") then
    -- req.path is nginx's decoded URI already.
    return web_transition(req, ref, action) or true
  end
  return nil
end

return M
