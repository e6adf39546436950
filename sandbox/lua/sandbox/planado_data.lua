-- Data of the emulated Planado account (Planado's API documentation): deterministic uuids,
-- ISO times, the seed, bulk generators and the answer shapes.
--
-- Everything lives in sandbox.store's db under "planado_*" keys, so that
-- store.reset() reseeds it and GET /_sandbox/store/planado_jobs/<uuid> shows
-- the internal records. This module must not require sandbox.store (store
-- calls seed() from here while it builds its db).
--
-- Records are kept in the answer's "full shape" (nulls are json.null), plus
-- internal keys starting with "_" (_seq: creation order, _history: applied
-- updates, _events: history events). Lists run over db.planado_order[coll], an
-- array of the live records in creation order (ascending _seq).
local json = require("sandbox.json")
local util = require("sandbox.util")

local M = {}

local null = json.null
M.null = null

M.SEED_TIME = 1704103200 -- 2024-01-01T10:00:00Z, as the Planfix seed

---------------------------------------------------------------- uuids

-- uuid(kind, n): "%08x-0000-4000-8000-%012x" with a number per kind, so the
-- seeded and generated uuids are readable: job 1 is
-- 00000001-0000-4000-8000-000000000001, client 1 is 00000002-…-000000000001.
M.KIND = {
  job = 1, client = 2, site = 3, job_type = 4, template = 5, team = 6, user = 7,
  skill = 8, service = 9, product = 10, webhook = 11, event = 12, print_request = 13,
  territory = 14, resolution = 15, custom_field = 16, delivery = 17, category = 18, unit = 19,
}

function M.uuid(kind, n)
  return string.format("%08x-0000-4000-8000-%012x", M.KIND[kind], n)
end

-- Next uuid of a kind from db.planado_next (counters continue after the seed
-- and after generated data).
function M.next_uuid(db, kind)
  local n = db.planado_next[kind]
  db.planado_next[kind] = n + 1
  return M.uuid(kind, n), n
end

function M.is_uuid(s)
  return type(s) == "string" and s:lower():match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") ~= nil
end

---------------------------------------------------------------- time

-- "2024-01-01T10:00:00.000Z" (UTC, milliseconds).
function M.iso(ts)
  local s = math.floor(ts)
  local ms = math.floor((ts - s) * 1000 + 0.5)
  if ms >= 1000 then s, ms = s + 1, ms - 1000 end
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", ms)
end

local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- Parses ISO 8601 datetimes in the three forms of the documented job samples ("…T20:00:00.000Z",
-- "…T06:25:00" without zone = UTC, no milliseconds) and "+03:00" offsets.
-- Returns a unix time (float) or nil.
function M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil end
  local h, mi, sec, frac, zone = 0, 0, 0, "", ""
  if rest ~= "" then
    local hh, mm, tail = rest:match("^[Tt ](%d%d):(%d%d)(.*)$")
    if not hh then return nil end
    h, mi = tonumber(hh), tonumber(mm)
    local ss, tail2 = tail:match("^:(%d%d)(.*)$")
    if ss then sec, tail = tonumber(ss), tail2 end
    local fr, tail3 = tail:match("^%.(%d+)(.*)$")
    if fr then frac, tail = fr, tail3 end
    zone = tail
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then return nil end
  local offset = 0
  if zone == "" or zone == "Z" or zone == "z" then
    offset = 0
  else
    local sign, oh, om = zone:match("^([%+%-])(%d%d):?(%d%d)$")
    if not sign then
      sign, oh = zone:match("^([%+%-])(%d%d)$")
      om = "00"
    end
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  local t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
  if frac ~= "" then t = t + tonumber("0." .. frac) end
  return t
end

local function seed_time(minutes) return M.iso(M.SEED_TIME + minutes * 60) end
M.seed_time = seed_time

---------------------------------------------------------------- collections

-- The collections (db["planado_" .. name]) keyed by uuid. The listable ones
-- also have an order array; jobs, clients and sites an external_id index.
M.COLLECTIONS = {
  "jobs", "clients", "sites", "job_types", "templates", "teams", "users", "skills",
  "services", "products", "webhooks", "territories", "resolutions", "custom_fields",
  "categories", "units", "print_requests", "events",
}

-- Adds a record (with .uuid) to a collection, at the end of its order.
function M.insert(db, coll, rec)
  db.planado_seq = db.planado_seq + 1
  rec._seq = db.planado_seq
  db["planado_" .. coll][rec.uuid] = rec
  local order = db.planado_order[coll]
  if order then order[#order + 1] = rec end
  M.index_external_id(db, coll, rec)
  return rec
end

function M.index_external_id(db, coll, rec, old)
  local idx = db.planado_ext[coll]
  if not idx then return end
  if old ~= nil and old ~= null and idx[old] == rec.uuid then idx[old] = nil end
  local ext = rec.external_id
  if type(ext) == "string" then idx[ext] = rec.uuid end
end

-- Position of the record with sequence number seq in an order array (binary
-- search; the arrays are sorted by _seq). Returns the index where it is, or
-- where it would be inserted, and whether it is there.
function M.position(order, seq)
  local lo, hi = 1, #order
  while lo <= hi do
    local mid = math.floor((lo + hi) / 2)
    local s = order[mid]._seq
    if s == seq then return mid, true end
    if s < seq then lo = mid + 1 else hi = mid - 1 end
  end
  return lo, false
end

-- Removes a record from its collection; its _seq is kept as a tombstone so an
-- `after=<its uuid>` still pages on from the same place.
function M.remove(db, coll, rec)
  db["planado_" .. coll][rec.uuid] = nil
  local order = db.planado_order[coll]
  if order then
    local i, found = M.position(order, rec._seq)
    if found then table.remove(order, i) end
  end
  local idx = db.planado_ext[coll]
  if idx and type(rec.external_id) == "string" and idx[rec.external_id] == rec.uuid then
    idx[rec.external_id] = nil
  end
  db.planado_tombstones[rec.uuid] = { coll = coll, seq = rec._seq }
end

-- A record by uuid, or (where the collection has external ids) by external_id.
function M.find(db, coll, ref)
  if type(ref) ~= "string" then return nil end
  local rec = db["planado_" .. coll][ref]
  if rec then return rec end
  if M.is_uuid(ref) then
    rec = db["planado_" .. coll][ref:lower()]
    if rec then return rec end
  end
  local idx = db.planado_ext[coll]
  local uuid = idx and idx[ref]
  return uuid and db["planado_" .. coll][uuid] or nil
end

---------------------------------------------------------------- shapes

local function arr(t) return json.array(t or {}) end
M.arr = arr

function M.empty_address()
  return {
    formatted = null, entrance_no = null, apartment = null, floor = null,
    description = null, geolocation = null,
  }
end
M.ADDRESS_KEYS = { "formatted", "entrance_no", "apartment", "floor", "description", "geolocation" }

-- Public view of a record: every key but the internal "_" ones.
M.public = util.public

local function ref_uuid(v, key)
  if type(v) == "table" and v[key or "uuid"] ~= nil then return v[key or "uuid"] end
  return null
end

-- Refreshes the {uuid, external_id} references of a job or site to the
-- current external_id of the client/site they point at.
local function refresh_refs(db, out)
  for _, k in ipairs({ "client", "site" }) do
    local r = out[k]
    if type(r) == "table" and r.uuid then
      local target = db["planado_" .. k .. "s"][r.uuid]
      if target then r.external_id = target.external_id end
    end
  end
  return out
end

-- GET /jobs/{ref}: the full shape (the documented job).
function M.job_full(db, job)
  return refresh_refs(db, M.public(job))
end

-- GET /jobs list items: the compact shape (the documented list item), without address.
function M.job_compact(db, job)
  local full = M.job_full(db, job)
  local assignee = null
  if type(full.assignee) == "table" then
    if full.assignee.worker then assignee = { worker_uuid = full.assignee.worker.uuid }
    elseif full.assignee.team then assignee = { team_uuid = full.assignee.team.uuid } end
  end
  local skills = arr()
  for _, s in ipairs(full.skills or {}) do skills[#skills + 1] = s.uuid end
  local resolution = null
  if type(full.resolution) == "table" then
    resolution = { uuid = full.resolution.uuid, comment = full.resolution.comment }
  end
  return {
    uuid = full.uuid, external_id = full.external_id, external_order_id = full.external_order_id,
    serial_no = full.serial_no, status = full.status, scheduled_at = full.scheduled_at,
    scheduled_duration = full.scheduled_duration, contacts = full.contacts, version = full.version,
    created_at = full.created_at, updated_at = full.updated_at,
    template_uuid = ref_uuid(full.template), client_uuid = ref_uuid(full.client),
    site_uuid = ref_uuid(full.site), type_uuid = ref_uuid(full.type),
    assignee = assignee, assignees = full.assignees, skill_uuids = skills,
    territory_uuid = ref_uuid(full.territory), initial_job_uuid = null, completion_of_uuid = null,
    resolution = resolution,
  }
end

function M.site_full(db, site)
  return refresh_refs(db, M.public(site))
end

-- The display name of a client: the organisation name, or the person's
-- names joined.
function M.client_name(c)
  if c.organization then
    return type(c.organization_name) == "string" and c.organization_name or ""
  end
  local parts = {}
  for _, k in ipairs({ "last_name", "first_name", "middle_name" }) do
    if type(c[k]) == "string" and c[k] ~= "" then parts[#parts + 1] = c[k] end
  end
  return table.concat(parts, " ")
end

---------------------------------------------------------------- records

local function user_ref(u) return { uuid = u.uuid, email = u.email } end
M.user_ref = user_ref

function M.resolution_ref(r) return { uuid = r.uuid, name = r.name, successful = r.successful } end

-- The job's custom_fields / report_fields: every defined field of that
-- group, value null.
function M.default_fields(db, group)
  local out = arr()
  for _, f in ipairs(db.planado_order.custom_fields) do
    if f.group == group then
      out[#out + 1] = { uuid = f.uuid, name = f.name, field_type = f.field_type,
        data_type = f.data_type, required = f.required, value = null }
    end
  end
  return out
end

function M.default_type(db)
  for _, t in ipairs(db.planado_order.job_types) do
    if t.code == "default" then return { uuid = t.uuid, code = t.code } end
  end
  return null
end

function M.default_resolutions(db)
  local out = arr()
  for _, r in ipairs(db.planado_order.resolutions) do
    if r._default then out[#out + 1] = M.resolution_ref(r) end
  end
  return out
end

-- A new job record with every key of the full shape; `fields` overrides.
function M.job_record(db, n, created, fields)
  local f = fields or {}
  local function default(k, make)
    if f[k] ~= nil then return f[k] end
    return make()
  end
  local ts = created
  local job = {
    uuid = M.uuid("job", n), external_id = null, external_order_id = null, serial_no = n,
    status = "posted", scheduled_at = null, scheduled_duration = null, template = null,
    type = default("type", function() return M.default_type(db) end),
    client = null, site = null, assignee = null,
    assignees = default("assignees", arr), territory = null, skills = default("skills", arr),
    description = null, address = default("address", M.empty_address),
    contacts = default("contacts", arr),
    possible_resolutions = default("possible_resolutions", function() return M.default_resolutions(db) end),
    custom_fields = default("custom_fields", function() return M.default_fields(db, "custom") end),
    report_fields = default("report_fields", function() return M.default_fields(db, "report") end),
    resolution = null,
    timestamps = default("timestamps", function()
      return { en_route_at = null, started_at = null, suspended_at = null, finished_at = null }
    end),
    version = 1, created_at = ts, updated_at = ts,
    _history = {}, _events = {},
  }
  return util.merge(job, f)
end

function M.client_record(n, created, fields)
  local c = {
    uuid = M.uuid("client", n), external_id = null, organization = false, organization_name = null,
    first_name = null, last_name = null, middle_name = null, site_address = null,
    contacts = arr(), version = 1, created_at = created, updated_at = created,
    _history = {}, _events = {},
  }
  util.merge(c, fields)
  c.name = M.client_name(c)
  return c
end

function M.site_record(n, created, fields)
  local s = {
    uuid = M.uuid("site", n), external_id = null, name = "", description = null,
    client = null, territory = null, address = M.empty_address(), contacts = arr(),
    version = 1, created_at = created, updated_at = created,
    _history = {}, _events = {},
  }
  return util.merge(s, fields)
end

-- The version-1 history event of a seeded or generated record (payload {}:
-- no API call made it). `shared` (optional) holds a payload table shared by
-- the events of one generator run.
function M.seed_event(db, rec, entity_type, time, shared)
  local uuid = M.next_uuid(db, "event")
  local ev = {
    uuid = uuid, event_type = entity_type .. "_created", entity_type = entity_type,
    entity_uuid = rec.uuid, version = 1, time = time, payload = shared and shared.payload or {},
    context = { source = "web", happened_at = M.iso(time), created_at = M.iso(time),
      user_uuid = M.uuid("user", 1), user_email = "admin@sandbox.test", device_uuid = null },
  }
  db.planado_events[uuid] = ev
  db.planado_event_log[#db.planado_event_log + 1] = ev
  rec._events[#rec._events + 1] = ev
  return ev
end

---------------------------------------------------------------- seed

local function seed_reference(db)
  local function add(coll, kind, n, rec)
    rec.uuid = M.uuid(kind, n)
    return M.insert(db, coll, rec)
  end
  local users = {
    { "Admin", "Dispatcher", "admin@sandbox.test", "admin" },
    { "Ivan", "Workerov", "ivan.worker@sandbox.test", "worker" },
    { "Olga", "Fieldova", "olga.field@sandbox.test", "worker" },
  }
  for i, u in ipairs(users) do
    add("users", "user", i, { first_name = u[1], last_name = u[2], email = u[3], role = u[4],
      created_at = seed_time(i), updated_at = seed_time(i) })
  end
  add("territories", "territory", 1, { name = "North" })
  add("territories", "territory", 2, { name = "South" })
  add("teams", "team", 1, { name = "Field team North", territory = { uuid = M.uuid("territory", 1), name = "North" } })
  add("teams", "team", 2, { name = "Night shift", territory = null })
  for i, code in ipairs({ "default", "installation", "repair" }) do
    add("job_types", "job_type", i, { code = code, name = code:sub(1, 1):upper() .. code:sub(2) })
  end
  for i = 1, 25 do
    add("skills", "skill", i, { name = string.format("Skill %02d", i) })
  end
  add("resolutions", "resolution", 1, { name = "Done", successful = true, _default = true })
  add("resolutions", "resolution", 2, { name = "Client absent", successful = false, _default = true })
  add("custom_fields", "custom_field", 1, { name = "Equipment serial", group = "custom",
    field_type = "input", data_type = "string", required = false })
  add("custom_fields", "custom_field", 2, { name = "Floor count", group = "custom",
    field_type = "input", data_type = "integer", required = false })
  add("custom_fields", "custom_field", 3, { name = "Photo taken", group = "report",
    field_type = "checkbox", data_type = "boolean", required = false })
  add("custom_fields", "custom_field", 4, { name = "Customer comment", group = "report",
    field_type = "input", data_type = "string", required = false })
  local worker2 = M.uuid("user", 2)
  add("templates", "template", 1, { name = "Installation", type_uuid = M.uuid("job_type", 2),
    description = "Install and configure the equipment", scheduled_duration = { minutes = 120 },
    assignee = { worker = { uuid = worker2 } }, created_at = seed_time(1), updated_at = seed_time(1) })
  add("templates", "template", 2, { name = "Repair", type_uuid = M.uuid("job_type", 3),
    description = "Diagnose and repair", scheduled_duration = { minutes = 60 }, assignee = null,
    created_at = seed_time(2), updated_at = seed_time(2) })
  add("templates", "template", 3, { name = "Inspection", type_uuid = M.uuid("job_type", 1),
    description = null, scheduled_duration = null, assignee = null,
    created_at = seed_time(3), updated_at = seed_time(3) })
  add("categories", "category", 1, { name = "Installation works" })
  add("units", "unit", 1, { name = "pcs" })
  add("services", "service", 1, { name = "Router installation", description = "On-site setup",
    category_uuid = M.uuid("category", 1), currency = "rub", external_id = "svc-install",
    price_default = 1500, archived = false })
  add("services", "service", 2, { name = "Diagnostics", description = null, category_uuid = null,
    currency = "rub", external_id = null, price_default = 500, archived = false })
  add("products", "product", 1, { name = "Router", description = null, category_uuid = null,
    currency = "rub", external_id = "prd-router", price_default = 3200, archived = false,
    unit_uuid = M.uuid("unit", 1), gtin = "4600000000017" })
end

local function seed_entities(db)
  local acme = M.insert(db, "clients", M.client_record(1, seed_time(10), {
    external_id = "acme", organization = true, organization_name = "Acme LLC",
    contacts = arr({ { name = "Office", value = "+15550100", type = "phone" } }),
  }))
  M.seed_event(db, acme, "client", M.SEED_TIME + 600)
  local person = M.insert(db, "clients", M.client_record(2, seed_time(11), {
    first_name = "Ivan", last_name = "Petrov",
  }))
  M.seed_event(db, person, "client", M.SEED_TIME + 660)
  local site = M.insert(db, "sites", M.site_record(1, seed_time(12), {
    external_id = "acme-hq", name = "Acme HQ", description = "Main office",
    client = { uuid = acme.uuid, external_id = "acme" },
    address = util.merge(M.empty_address(), { formatted = "1 Main St, Springfield", floor = "3",
      geolocation = { latitude = 55.75, longitude = 37.61 } }),
  }))
  M.seed_event(db, site, "site", M.SEED_TIME + 720)

  local worker2 = db.planado_users[M.uuid("user", 2)]
  local worker3 = db.planado_users[M.uuid("user", 3)]
  local j1 = M.insert(db, "jobs", M.job_record(db, 1, seed_time(20), {
    external_id = "job-ext-1", description = "Install the router",
    client = { uuid = acme.uuid, external_id = "acme" },
    contacts = arr({ { name = "Reception", value = "+15550101", type = "phone" } }),
  }))
  M.seed_event(db, j1, "job", M.SEED_TIME + 1200)
  local j2 = M.insert(db, "jobs", M.job_record(db, 2, seed_time(21), {
    external_order_id = "order-1", status = "scheduled", scheduled_at = M.iso(M.SEED_TIME + 86400 - 3600),
    scheduled_duration = { minutes = 120 },
    template = { uuid = M.uuid("template", 1), name = "Installation" },
    type = { uuid = M.uuid("job_type", 2), code = "installation" },
    client = { uuid = acme.uuid, external_id = "acme" }, site = { uuid = site.uuid, external_id = "acme-hq" },
    assignee = { worker = user_ref(worker2) }, assignees = arr({ { uuid = worker2.uuid, access = "edit" } }),
    territory = { uuid = M.uuid("territory", 1), name = "North" },
    skills = arr({ { uuid = M.uuid("skill", 1), name = "Skill 01" } }),
    description = "Install the router, visit 1",
    address = util.merge(M.empty_address(), { formatted = "1 Main St, Springfield", floor = "3" }),
  }))
  M.seed_event(db, j2, "job", M.SEED_TIME + 1260)
  local j3 = M.insert(db, "jobs", M.job_record(db, 3, seed_time(22), {
    external_order_id = "order-1", status = "finished", scheduled_at = M.iso(M.SEED_TIME + 2 * 86400),
    scheduled_duration = { minutes = 60 },
    client = { uuid = person.uuid, external_id = null },
    assignee = { worker = user_ref(worker3) }, assignees = arr({ { uuid = worker3.uuid, access = "edit" } }),
    description = "Visit 2: check the installation",
    resolution = { uuid = M.uuid("resolution", 1), name = "Done", successful = true, comment = "All good" },
    timestamps = { en_route_at = M.iso(M.SEED_TIME + 2 * 86400 - 1800), started_at = M.iso(M.SEED_TIME + 2 * 86400),
      suspended_at = null, finished_at = M.iso(M.SEED_TIME + 2 * 86400 + 3000) },
  }))
  M.seed_event(db, j3, "job", M.SEED_TIME + 1320)
end

-- Fills the planado_* keys of a fresh store db.
function M.seed(db)
  for _, c in ipairs(M.COLLECTIONS) do db["planado_" .. c] = {} end
  db.planado_order = {}
  for _, c in ipairs({ "jobs", "clients", "sites", "job_types", "templates", "teams", "users", "skills",
    "services", "products", "webhooks", "territories", "resolutions", "custom_fields" }) do
    db.planado_order[c] = {}
  end
  db.planado_ext = { jobs = {}, clients = {}, sites = {} }
  db.planado_tombstones = {}
  db.planado_deliveries = {}   -- every delivery attempt, oldest first
  db.planado_event_log = {}    -- every event, oldest first (events are also keyed by uuid)
  db.planado_seq = 0
  db.planado_next = {}
  for kind in pairs(M.KIND) do db.planado_next[kind] = 1 end
  seed_reference(db)
  seed_entities(db)
  -- New records continue after the seeded ones.
  local plural = { category = "categories", territory = "territories" }
  for kind in pairs(M.KIND) do
    local coll = db["planado_" .. (plural[kind] or (kind .. "s"))]
    if kind ~= "event" and type(coll) == "table" then
      local n = 0
      for _ in pairs(coll) do n = n + 1 end
      db.planado_next[kind] = n + 1
    end
  end
end

---------------------------------------------------------------- generators

local STATUSES = { "posted", "scheduled", "started", "finished" }

-- POST /_sandbox/data {"planado_jobs":N}: N jobs, serial i, created at seed +
-- i minutes (so job N is the newest and first in the list). The status
-- cycles posted, scheduled, started, finished; external_id "job-i",
-- external_order_id "order-ceil(i/2)"; non-posted jobs are scheduled at seed
-- + i hours, assigned to worker 2 (odd i) or 3 (even i).
--
-- Stored records are never changed in place (every write builds a deep-copied
-- working record and then swaps its values in), so the generated records share
-- their default sub-tables: 100000 jobs stay affordable.
local function shared_defaults(db)
  return {
    address = M.empty_address(), contacts = arr(), skills = arr(), assignees = arr(),
    possible_resolutions = M.default_resolutions(db),
    custom_fields = M.default_fields(db, "custom"), report_fields = M.default_fields(db, "report"),
    type = M.default_type(db), scheduled_duration = { minutes = 60 },
    timestamps = { en_route_at = null, started_at = null, suspended_at = null, finished_at = null },
    resolution = { uuid = M.uuid("resolution", 1), name = "Done", successful = true, comment = null },
    payload = {},
  }
end

function M.generate_jobs(db, n)
  db.planado_jobs = {}
  db.planado_order.jobs = {}
  db.planado_ext.jobs = {}
  local workers = { db.planado_users[M.uuid("user", 2)], db.planado_users[M.uuid("user", 3)] }
  local sh = shared_defaults(db)
  local assignee, assignees = {}, {}
  for k, w in ipairs(workers) do
    assignee[k] = { worker = user_ref(w) }
    assignees[k] = arr({ { uuid = w.uuid, access = "edit" } })
  end
  for i = 1, n do
    local status = STATUSES[(i - 1) % 4 + 1]
    local fields = {
      external_id = "job-" .. i, external_order_id = "order-" .. math.ceil(i / 2),
      status = status, description = "Job " .. i,
      address = sh.address, contacts = sh.contacts, skills = sh.skills, assignees = sh.assignees,
      possible_resolutions = sh.possible_resolutions, custom_fields = sh.custom_fields,
      report_fields = sh.report_fields, type = sh.type, timestamps = sh.timestamps,
    }
    if status ~= "posted" then
      local k = (i % 2 == 1) and 1 or 2
      fields.scheduled_at = M.iso(M.SEED_TIME + i * 3600)
      fields.scheduled_duration = sh.scheduled_duration
      if workers[k] then
        fields.assignee = assignee[k]
        fields.assignees = assignees[k]
      end
    end
    if status == "started" or status == "finished" then
      fields.timestamps = { en_route_at = null, started_at = M.iso(M.SEED_TIME + i * 3600),
        suspended_at = null, finished_at = status == "finished" and M.iso(M.SEED_TIME + i * 3600 + 1800) or null }
    end
    if status == "finished" then fields.resolution = sh.resolution end
    local job = M.insert(db, "jobs", M.job_record(db, i, seed_time(i), fields))
    M.seed_event(db, job, "job", M.SEED_TIME + i * 60, sh)
  end
  db.planado_next.job = n + 1
end

-- {"planado_clients":N}: "Client i" (odd i: organisation "Client i"; even i:
-- person first_name "Client", last_name "i"), external_id "client-i".
function M.generate_clients(db, n)
  db.planado_clients = {}
  db.planado_order.clients = {}
  db.planado_ext.clients = {}
  local sh = { contacts = arr(), payload = {} }
  for i = 1, n do
    local fields = { external_id = "client-" .. i, contacts = sh.contacts }
    if i % 2 == 1 then
      fields.organization, fields.organization_name = true, "Client " .. i
    else
      fields.first_name, fields.last_name = "Client", tostring(i)
    end
    local c = M.insert(db, "clients", M.client_record(i, seed_time(i), fields))
    M.seed_event(db, c, "client", M.SEED_TIME + i * 60, sh)
  end
  db.planado_next.client = n + 1
end

-- {"planado_sites":N}: "Site i", external_id "site-i", no client.
function M.generate_sites(db, n)
  db.planado_sites = {}
  db.planado_order.sites = {}
  db.planado_ext.sites = {}
  local sh = { address = M.empty_address(), contacts = arr(), payload = {} }
  for i = 1, n do
    local s = M.insert(db, "sites", M.site_record(i, seed_time(i), { external_id = "site-" .. i,
      name = "Site " .. i, address = sh.address, contacts = sh.contacts }))
    M.seed_event(db, s, "site", M.SEED_TIME + i * 60, sh)
  end
  db.planado_next.site = n + 1
end

return M
