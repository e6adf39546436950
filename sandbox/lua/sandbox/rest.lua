-- The emulated Planfix REST API: request pipeline (auth, rate/quota, scope,
-- body parsing), routing and the handlers. Data lives in sandbox.store.
--
-- Handlers get (req, params) and return status, body-table[, headers].
-- Validation failures are raised with api_error() and turned into the
-- Planfix error body {"result":"fail","code":N,"error":"..."} by handle().
local json = require("sandbox.json")
local util = require("sandbox.util")
local store = require("sandbox.store")
local auth = require("sandbox.auth")
local ratelimit = require("sandbox.ratelimit")
local router = require("sandbox.router")
local multipart = require("sandbox.multipart")
local scenarios = require("sandbox.planfix_scenarios")
local cf_rules = require("sandbox.planfix_fields")
local list_filters = require("sandbox.filters")

local M = {}

-- Sandbox behaviour switches set through POST /_sandbox/config.
local function default_config()
  return {
    queue_updates = {},         -- task id -> true: POST /task/{id} answers 202
    queue_contact_updates = {}, -- contact id -> true: POST /contact/{id} answers 202
    download_ttl = 300,         -- seconds a /file/{id}/download URL stays valid
    download_origin = nil,      -- scheme://host:port of download URLs (default: the request's own)
    report_polls = 1,           -- /report/status answers "in_progress" this many times
  }
end
M.config = default_config()

function M.reset()
  M.config = default_config()
  M.operations = {}
end

local function id_set(list, what)
  if type(list) ~= "table" then return nil, what .. " must be an array of ids" end
  local set = {}
  for _, v in ipairs(list) do
    local id = util.to_int(v)
    if not id then return nil, what .. " must be an array of ids" end
    set[id] = true
  end
  return set
end

function M.configure(cfg)
  if cfg.queue_updates ~= nil then
    local s, err = id_set(cfg.queue_updates, "queue_updates")
    if not s then return nil, err end
    M.config.queue_updates = s
  end
  if cfg.queue_contact_updates ~= nil then
    local s, err = id_set(cfg.queue_contact_updates, "queue_contact_updates")
    if not s then return nil, err end
    M.config.queue_contact_updates = s
  end
  if cfg.report_polls ~= nil then
    local v = util.to_int(cfg.report_polls)
    if not v or v < 0 then return nil, "report_polls must be an integer >= 0" end
    M.config.report_polls = v
  end
  if cfg.download_origin ~= nil then
    local v = cfg.download_origin
    if v == false or v == "" or v == ngx.null then
      M.config.download_origin = nil
    elseif type(v) ~= "string" or not v:match("^https?://[^/]+$") then
      return nil, "download_origin must be scheme://host[:port] (or false)"
    else
      M.config.download_origin = v
    end
  end
  if cfg.download_ttl ~= nil then
    local v = util.to_number(cfg.download_ttl)
    if not v or v < 0 then return nil, "download_ttl must be a number >= 0" end
    M.config.download_ttl = v
  end
  return true
end

function M.describe()
  local function ids(set)
    local out = util.sorted_ids(set)
    return json.array(out)
  end
  return {
    queue_updates = ids(M.config.queue_updates),
    queue_contact_updates = ids(M.config.queue_contact_updates),
    download_ttl = M.config.download_ttl,
    download_origin = M.config.download_origin or ngx.null,
    report_polls = M.config.report_polls,
  }
end

---------------------------------------------------------------- errors

local API_ERROR = {}

local function api_error(status, code, message)
  error(setmetatable({ status = status, code = code, message = message }, API_ERROR), 0)
end

local function fail_body(code, message)
  return { result = "fail", code = code, error = message }
end

local function ok(extra)
  local body = extra or {}
  body.result = "success"
  return 200, body
end

local function created(id)
  return 201, { result = "success", id = id }
end

---------------------------------------------------------------- parameters

local function int_param(v, what)
  local n = util.to_int(v)
  if not n then api_error(400, 41, "Invalid parameter value: " .. what) end
  return n
end

local function task_id(v) return int_param(v, "task id") end

-- "12" or "contact:12" (and "user:1" / "1" for users).
local function prefixed_id(v, prefix)
  if type(v) == "number" then return int_param(v, prefix .. " id") end
  local s = tostring(v or "")
  local n = s:match("^" .. prefix .. ":(%d+)$") or s:match("^(%d+)$")
  if not n then api_error(400, 41, "Invalid parameter value: " .. prefix .. " id") end
  return tonumber(n)
end

-- offset (>= 0, default 0) and pageSize (1..100, default 100) from a JSON
-- body or the query string.
local function paging(src)
  local offset, size = 0, 100
  if src.offset ~= nil and src.offset ~= json.null then
    offset = util.to_int(src.offset)
    if not offset or offset < 0 then api_error(400, 41, "Invalid parameter value: offset") end
  end
  if src.pageSize ~= nil and src.pageSize ~= json.null then
    size = util.to_int(src.pageSize)
    if not size or size < 1 or size > 100 then api_error(400, 41, "Invalid parameter value: pageSize") end
  end
  return offset, size
end

local function page(list, offset, size)
  local out = json.array()
  for i = offset + 1, math.min(#list, offset + size) do out[#out + 1] = list[i] end
  return out
end

-- Records of a store table in id order, optionally filtered.
local function ordered(tbl, pred)
  local out = {}
  for _, id in ipairs(util.sorted_ids(tbl)) do
    local r = tbl[id]
    if not pred or pred(r) then out[#out + 1] = r end
  end
  return out
end

---------------------------------------------------------------- projection

-- Custom field definitions of an object kind: def(id) finds one; `kind`
-- (tasks, contacts, projects, users) brings templates and the write rules
-- of sandbox.planfix_fields.
local function cf_lookup(kind)
  return { kind = kind, def = function(id) return store.customfield(kind, id) end }
end

-- The fields of one directory or data tag (no templates).
local function fields_lookup(defs)
  return { def = function(id)
    for _, f in ipairs(defs or {}) do
      if f.id == id then return f end
    end
  end }
end

-- Whether field `id` of `rec` is shown and written: only the fields of the
-- record's template, when it has one.
local function cf_applies(cf, rec, id)
  return not cf.kind or cf_rules.attached(store.db, cf.kind, rec, id)
end

local function file_list(ids)
  local out = json.array()
  for _, fid in ipairs(ids or {}) do
    local f = store.db.files[fid]
    if f then out[#out + 1] = store.file_summary(f) end
  end
  return out
end

-- Builds the API view of a record: `id` (when the record has one) plus the
-- requested system fields; numeric names select custom fields, which come
-- back in customFieldData. Without `fields`, `defaults` are used (the
-- "minimal object"). Names starting with "_" are internal and never shown;
-- the word customFieldData itself is ignored, as on the real service.
local function project(rec, fields, defaults, cf, computed)
  local names = util.split_list(fields)
  if #names == 0 then names = defaults end
  local out = {}
  if rec.id ~= nil then out.id = rec.id end
  local cf_ids = {}
  for _, n in ipairs(names) do
    if n:match("^%d+$") then
      cf_ids[#cf_ids + 1] = tonumber(n)
    elseif n:sub(1, 1) ~= "_" and n ~= "customFieldData" then
      if computed and computed[n] then
        out[n] = computed[n](rec)
      elseif n == "files" and rec._files then
        out.files = file_list(rec._files)
      elseif rec[n] ~= nil then
        out[n] = util.deepcopy(rec[n])
      end
    end
  end
  if #cf_ids > 0 and cf then
    local data = json.array()
    for _, id in ipairs(cf_ids) do
      local def = cf.def(id)
      if def and cf_applies(cf, rec, id) then
        local v = rec._cf and rec._cf[id]
        if v == nil then v = json.null end
        data[#data + 1] = { field = cf_rules.view(def), value = util.deepcopy(v) }
      end
    end
    out.customFieldData = data
  end
  return out
end

local function project_all(list, fields, defaults, cf, computed)
  local out = json.array()
  for i, r in ipairs(list) do out[i] = project(r, fields, defaults, cf, computed) end
  return out
end

---------------------------------------------------------------- updates

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- Applies a create/update body to rec. Known fields are stored, custom
-- fields must be in the known set (cf), "files" replaces the description
-- files. Everything else becomes a failure entry, like Planfix's partial
-- success. special[k](rec, v) may handle a field itself and return an error
-- text. Returns failures (json array), changed field names.
-- One customFieldData item: stored (the field's id joins `changed`), a
-- failure entry, or a silent no-op (kept in `notes` for /_sandbox/store).
local function apply_custom(rec, item, cf, out)
  local fid = type(item) == "table" and type(item.field) == "table" and util.to_int(item.field.id)
  local def = fid and cf and cf.def(fid)
  local what, value, note = "failed", "Custom field not found", nil
  if def then
    -- Directory and data tag fields have no templates ("directory" has none).
    what, value, note = cf_rules.write(store.db, cf.kind or "directory", rec, def, item.value)
  end
  local field = "customFieldData." .. tostring(fid or "?")
  if what == "failed" then
    out.failures[#out.failures + 1] = { field = field, error = value }
  elseif what == "ignored" then
    out.notes[#out.notes + 1] = field .. ": ignored, " .. value
  else
    rec._cf[fid] = value
    out.changed[#out.changed + 1] = tostring(fid)
    if note then out.notes[#out.notes + 1] = field .. ": " .. note end
  end
end

local function apply_fields(rec, body, known, cf, special)
  local failures, changed, notes = json.array(), {}, {}
  local keys = sorted_keys(body)
  -- Custom fields last: they follow the template the same body may set.
  table.sort(keys, function(a, b)
    if (a == "customFieldData") ~= (b == "customFieldData") then return b == "customFieldData" end
    return a < b
  end)
  for _, k in ipairs(keys) do
    local v = body[k]
    if k == "customFieldData" then
      if type(v) ~= "table" then
        failures[#failures + 1] = { field = "customFieldData", error = "Invalid value" }
      else
        rec._cf = rec._cf or {}
        local out = { failures = failures, changed = changed, notes = notes }
        for _, item in ipairs(v) do apply_custom(rec, item, cf, out) end
      end
    elseif k == "files" and rec._files then
      if type(v) ~= "table" then
        failures[#failures + 1] = { field = "files", error = "Invalid value" }
      else
        local ids = {}
        for _, f in ipairs(v) do
          local fid = type(f) == "table" and util.to_int(f.id)
          if fid and store.db.files[fid] then ids[#ids + 1] = fid
          else failures[#failures + 1] = { field = "files", error = "File not found" } end
        end
        rec._files = ids
        changed[#changed + 1] = "files"
      end
    elseif k == "id" then
      -- The id in the body is informational; the path decides.
    elseif special and special[k] then
      local err = special[k](rec, v)
      if err then failures[#failures + 1] = { field = k, error = err }
      else changed[#changed + 1] = k end
    elseif known[k] then
      rec[k] = v
      changed[#changed + 1] = k
    else
      failures[#failures + 1] = { field = k, error = "Unknown field" }
    end
  end
  return failures, changed, notes
end

local function update_answer(failures, queued)
  local body = { result = "success" }
  if #failures > 0 then body.failures = failures end
  return queued and 202 or 200, body
end

local function require_object(body)
  if type(body) ~= "table" then api_error(400, 30, "Invalid JSON: object expected") end
  return body
end

local function require_name(body, field)
  field = field or "name"
  local v = body[field]
  if type(v) ~= "string" or v == "" then
    api_error(400, 40, "Required parameter missing: " .. field)
  end
  return v
end

-- notes: the custom field writes that succeeded without storing (a field
-- not on the template, a read-only type, a period stored empty).
local function history(rec, req, changed, queued, notes)
  rec._history = rec._history or {}
  rec._history[#rec._history + 1] = {
    time = req.time, silent = util.is_true(util.query_value(req.query, "silent")),
    fields = json.array(changed), queued = queued or false, token = req.token,
    notes = json.array(notes or {}),
  }
  rec.dateOfLastUpdate = util.timepoint(req.time)
end

---------------------------------------------------------------- routes

local R = router.new()
M.router = R

local function route(method, pattern, handler, opts)
  opts = opts or {}
  if method == "POST" and opts.body == nil then opts.body = "json" end
  -- Scope: GET and list/filter POSTs only read; the rest writes.
  if opts.write == nil then
    opts.write = not (method == "GET" or pattern:match("/list$") or pattern:match("/filters$"))
  end
  return R:add(method, pattern, handler, opts)
end

route("GET", "/ping", function() return ok() end)

---------------------------------------------------------------- tasks

local TASK_FIELDS = set_of({
  "sourceObjectId", "sourceDataVersion", "name", "description", "priority", "status", "processId",
  "resultChecking", "assigner", "parent", "template", "object", "project", "counterparty", "dateTime",
  "startDateTime", "endDateTime", "hasStartDate", "hasEndDate", "hasStartTime", "hasEndTime",
  "delayedTillDate", "duration", "durationUnit", "durationType", "overdue", "closeToDeadLine",
  "notAcceptedInTime", "inFavorites", "isSummary", "isSequential", "assignees", "participants",
  "auditors", "isDeleted",
})
local TASK_DEFAULT = { "id", "name" }
local task_cf = cf_lookup("task")

local TASK_SPECIAL = {
  -- Status is given as {id}; store it with its name, reject unknown ids.
  status = function(rec, v)
    local id = type(v) == "table" and util.to_int(v.id) or util.to_int(v)
    if not id or not store.db.statuses[id] then return "Status not found" end
    rec.status = store.status_ref(id)
  end,
}

local function get_task(id)
  local t = store.db.tasks[id]
  if not t then api_error(404, 1000, "Task not found by id " .. id) end
  return t
end

-- The records of a list that its filters select (sandbox.filters); a filter the sandbox does
-- not understand is refused as an invalid parameter.
local function filtered(req, entity, tbl, field_def, extra)
  local pred, wrong = list_filters.compile(entity, req.json.filters, field_def, req.time)
  if not pred then api_error(400, 41, "Invalid parameter value: " .. wrong) end
  return ordered(tbl, function(r) return pred(r) and (not extra or extra(r)) end)
end

local function one_of(value, fn)
  if type(value) == "table" then
    for _, v in ipairs(value) do if fn(v) then return true end end
    return false
  end
  return fn(value)
end

local function parse_filters(v)
  if v == nil or v == json.null then return {} end
  if type(v) ~= "table" then api_error(400, 41, "Invalid parameter value: filters") end
  local out = {}
  for _, f in ipairs(v) do
    local ty = type(f) == "table" and util.to_int(f.type)
    if not ty then api_error(400, 41, "Invalid parameter value: filter type") end
    out[#out + 1] = { type = ty, operator = f.operator or "equal", value = f.value, field = f.field }
  end
  return out
end

route("POST", "/task/list", function(req)
  local b = req.json
  local offset, size = paging(b)
  local list = filtered(req, "task", store.db.tasks, task_cf.def)
  return ok({ tasks = project_all(page(list, offset, size), b.fields, TASK_DEFAULT, task_cf) })
end)

route("POST", "/task/filters", function()
  return ok({ filters = util.deepcopy(store.db.task_filters) })
end, { body = "none" })

route("GET", "/task/templates", function(req)
  local offset, size = paging(req.query)
  local list = ordered(store.db.templates)
  return ok({ templates = project_all(page(list, offset, size), util.query_value(req.query, "fields"), TASK_DEFAULT, task_cf) })
end)

route("GET", "/task/recurring", function(req)
  local offset, size = paging(req.query)
  return ok({ tasks = page({}, offset, size) })
end)

route("POST", "/task/", function(req)
  local b = require_object(req.json)
  require_name(b)
  local id = store.next_id("task")
  local rec = store.task_record(id, b.name, { dateTime = util.timepoint(req.time) })
  local failures = apply_fields(rec, b, TASK_FIELDS, task_cf, TASK_SPECIAL)
  store.db.tasks[id] = rec
  rec._create_failures = failures
  scenarios.task_created(rec, req.time)
  return created(id)
end)

route("GET", "/task/{id}", function(req, p)
  local t = get_task(task_id(p.id))
  return ok({ task = project(t, util.query_value(req.query, "fields"), TASK_DEFAULT, task_cf) })
end)

route("POST", "/task/{id}", function(req, p)
  local id = task_id(p.id)
  local t = store.db.tasks[id]
  if not t then api_error(404, 1000, "Task for update not found by id " .. id) end
  local failures, changed, notes = apply_fields(t, require_object(req.json), TASK_FIELDS, task_cf, TASK_SPECIAL)
  local queued = M.config.queue_updates[id] == true
  history(t, req, changed, queued, notes)
  scenarios.task_changed(t, changed, req.time)
  return update_answer(failures, queued)
end)

route("GET", "/task/{id}/files", function(req, p)
  local t = get_task(task_id(p.id))
  return ok({ files = file_list(t._files) })
end)

---------------------------------------------------------------- comments

local COMMENT_FIELDS = set_of({
  "sourceId", "sourceObjectId", "sourceDataVersion", "dateTime", "description", "owner",
  "isPinned", "isHidden", "recipients", "additionalDescriptionData",
})
local COMMENT_DEFAULT = { "id" }

local function get_comment(id)
  local c = store.db.comments[id]
  if not c then api_error(404, 5000, "Comment not found by id " .. id) end
  return c
end

local function comments_of(kind, id)
  return ordered(store.db.comments, function(c) return c[kind] and c[kind].id == id end)
end

local function add_comment(req, kind, target_id)
  local b = require_object(req.json)
  if (type(b.description) ~= "string" or b.description == "") and type(b.files) ~= "table" then
    api_error(400, 40, "Required parameter missing: description")
  end
  local id = store.next_id("comment")
  local c = {
    id = id, dateTime = util.timepoint(req.time), type = "Comment", fromType = "Planfix",
    description = "", owner = { id = "user:1", name = "Robot API" }, isDeleted = false,
    isPinned = false, isHidden = false, isNotRead = false, reminders = json.array(),
    dataTags = json.array(), _files = {},
    _silent = util.is_true(util.query_value(req.query, "silent")),
  }
  c[kind] = { id = target_id }
  apply_fields(c, b, COMMENT_FIELDS)
  store.db.comments[id] = c
  return created(id)
end

local function update_comment(req, kind, target_id, comment_id)
  local c = get_comment(comment_id)
  if not c[kind] or c[kind].id ~= target_id then
    api_error(404, 5000, "Comment not found by id " .. comment_id)
  end
  local failures, changed = apply_fields(c, require_object(req.json), COMMENT_FIELDS)
  history(c, req, changed)
  return update_answer(failures)
end

local function list_comments(req, kind, target_id)
  local b = req.json
  local offset, size = paging(b)
  return ok({ comments = project_all(page(comments_of(kind, target_id), offset, size), b.fields, COMMENT_DEFAULT) })
end

route("POST", "/task/{id}/comments/list", function(req, p)
  local id = task_id(p.id)
  get_task(id)
  return list_comments(req, "task", id)
end)

route("POST", "/task/{id}/comments/", function(req, p)
  local id = task_id(p.id)
  local t = get_task(id)
  local status, body = add_comment(req, "task", id)
  scenarios.comment_added(t, store.db.comments[body.id], req.time)
  return status, body
end)

route("POST", "/task/{id}/comments/{commentId}", function(req, p)
  local id = task_id(p.id)
  get_task(id)
  return update_comment(req, "task", id, int_param(p.commentId, "comment id"))
end)

route("POST", "/comment/list", function(req)
  local b = req.json
  -- Observed live: without filters the service answers 400 code 0.
  if type(b.filters) ~= "table" or #b.filters == 0 then
    api_error(400, 0, "Rest API error")
  end
  local offset, size = paging(b)
  local filters = parse_filters(b.filters)
  local list = ordered(store.db.comments, function(c)
    for _, f in ipairs(filters) do
      if f.type == 3001 and not one_of(f.value, function(x) return (c.owner or {}).id == x end) then
        return false
      end
    end
    return true
  end)
  return ok({ comments = project_all(page(list, offset, size), b.fields, COMMENT_DEFAULT) })
end)

route("GET", "/comment/{id}", function(req, p)
  local c = get_comment(int_param(p.id, "comment id"))
  return ok({ comment = project(c, util.query_value(req.query, "fields"), COMMENT_DEFAULT) })
end)

route("DELETE", "/comment/{id}", function(_, p)
  local id = int_param(p.id, "comment id")
  get_comment(id)
  store.db.comments[id] = nil
  return ok()
end)

---------------------------------------------------------------- checklist

local CHECKLIST_FIELDS = set_of({ "name", "assignees", "isDone", "parent" })
local CHECKLIST_DEFAULT = { "id", "name" }

local function get_item(task, item_id)
  local it = store.db.checklists[item_id]
  if not it or it._task ~= task then api_error(404, 600, "Checklist item not found by id " .. item_id) end
  return it
end

route("POST", "/task/{id}/checklist/list", function(req, p)
  local id = task_id(p.id)
  get_task(id)
  local b = req.json
  local offset, size = paging(b)
  local list = ordered(store.db.checklists, function(it) return it._task == id end)
  return ok({ items = project_all(page(list, offset, size), b.fields, CHECKLIST_DEFAULT) })
end)

route("POST", "/task/{id}/checklist", function(req, p)
  local id = task_id(p.id)
  get_task(id)
  local b = require_object(req.json)
  if type(b.name) ~= "string" or b.name == "" then
    api_error(400, 601, "Checklist item name is required")
  end
  local item_id = store.next_id("checklist")
  local it = { id = item_id, name = b.name, isDone = false, parent = { id = 0 },
    dateTime = util.timepoint(req.time), assignees = { users = json.array(), groups = json.array() }, _task = id }
  apply_fields(it, b, CHECKLIST_FIELDS)
  store.db.checklists[item_id] = it
  return created(item_id)
end)

route("GET", "/task/{id}/checklist/{itemId}", function(req, p)
  local id = task_id(p.id)
  get_task(id)
  local it = get_item(id, int_param(p.itemId, "item id"))
  return ok({ item = project(it, util.query_value(req.query, "fields"), CHECKLIST_DEFAULT) })
end)

route("POST", "/task/{id}/checklist/{itemId}", function(req, p)
  local id = task_id(p.id)
  get_task(id)
  local it = get_item(id, int_param(p.itemId, "item id"))
  local failures = apply_fields(it, require_object(req.json), CHECKLIST_FIELDS)
  return update_answer(failures, M.config.queue_updates[id] == true)
end)

route("DELETE", "/task/{id}/checklist/{itemId}", function()
  -- Observed: checklist items cannot be deleted.
  api_error(405, 405, "Method not allowed")
end)

---------------------------------------------------------------- contacts

local CONTACT_FIELDS = set_of({
  "template", "sourceObjectId", "sourceDataVersion", "name", "midname", "lastname", "gender",
  "description", "address", "site", "email", "skype", "telegramId", "telegram", "facebook",
  "instagram", "viberId", "position", "languageCode", "communicationLanguageCode", "timezone",
  "group", "isCompany", "isDeleted", "birthDate", "supervisors", "phones", "companies", "contacts",
})
local CONTACT_DEFAULT = { "id", "name" }
local contact_cf = cf_lookup("contact")

local function get_contact(id)
  local c = store.db.contacts[id]
  if not c then api_error(404, 2000, "Contact not found by id " .. id) end
  return c
end

route("POST", "/contact/list", function(req)
  local b = req.json
  local offset, size = paging(b)
  local list = page(filtered(req, "contact", store.db.contacts, contact_cf.def), offset, size)
  local out = project_all(list, b.fields, CONTACT_DEFAULT, contact_cf)
  if b.prefixedId == true then
    for _, c in ipairs(out) do c.id = "contact:" .. c.id end
  end
  return ok({ contacts = out })
end)

route("POST", "/contact/filters", function()
  return ok({ filters = util.deepcopy(store.db.contact_filters) })
end, { body = "none" })

-- Contact or company templates (isCompany, default false); fields with
-- custom field ids list the fields attached to each template.
route("GET", "/contact/templates", function(req)
  local offset, size = paging(req.query)
  local companies = util.is_true(util.query_value(req.query, "isCompany"))
  local list = ordered(store.db.contact_templates, function(t) return (t.isCompany == true) == companies end)
  local shown = util.query_value(req.query, "fields")
  return ok({ templates = project_all(page(list, offset, size), shown, CONTACT_DEFAULT, contact_cf) })
end)

route("GET", "/contact/groups", function()
  return ok({ groups = util.deepcopy(store.db.contact_groups) })
end)

route("POST", "/contact/", function(req)
  local b = require_object(req.json)
  require_name(b)
  local id = store.next_id("contact")
  local rec = {
    id = id, name = b.name, isCompany = false, isDeleted = false, createdDate = util.timepoint(req.time),
    dateOfLastUpdate = util.timepoint(req.time), _cf = {}, _files = {},
  }
  apply_fields(rec, b, CONTACT_FIELDS, contact_cf)
  store.db.contacts[id] = rec
  return created(id)
end)

route("POST", "/contact/import", function(req)
  local b = require_object(req.json)
  local ids = json.array()
  for _, c in ipairs(type(b.contacts) == "table" and b.contacts or {}) do
    if type(c) == "table" then
      local id = store.next_id("contact")
      local rec = { id = id, name = c.name or "", isCompany = false, isDeleted = false, _cf = {}, _files = {} }
      apply_fields(rec, c, CONTACT_FIELDS, contact_cf)
      store.db.contacts[id] = rec
      ids[#ids + 1] = id
    end
  end
  return 201, { result = "success", ids = ids }
end)

route("GET", "/contact/{id}", function(req, p)
  local c = get_contact(prefixed_id(p.id, "contact"))
  return ok({ contact = project(c, util.query_value(req.query, "fields"), CONTACT_DEFAULT, contact_cf) })
end)

route("POST", "/contact/{id}", function(req, p)
  local id = prefixed_id(p.id, "contact")
  local c = store.db.contacts[id]
  if not c then api_error(404, 2000, "Contact for update not found by id " .. id) end
  local failures, changed, notes = apply_fields(c, require_object(req.json), CONTACT_FIELDS, contact_cf)
  local queued = M.config.queue_contact_updates[id] == true
  history(c, req, changed, queued, notes)
  return update_answer(failures, queued)
end)

route("GET", "/contact/{id}/files", function(_, p)
  local c = get_contact(prefixed_id(p.id, "contact"))
  return ok({ files = file_list(c._files) })
end)

route("POST", "/contact/{id}/comments/list", function(req, p)
  local id = prefixed_id(p.id, "contact")
  get_contact(id)
  return list_comments(req, "contact", id)
end)

route("POST", "/contact/{id}/comments/", function(req, p)
  local id = prefixed_id(p.id, "contact")
  get_contact(id)
  return add_comment(req, "contact", id)
end)

route("POST", "/contact/{id}/comments/{commentId}", function(req, p)
  local id = prefixed_id(p.id, "contact")
  get_contact(id)
  return update_comment(req, "contact", id, int_param(p.commentId, "comment id"))
end)

---------------------------------------------------------------- projects

local PROJECT_FIELDS = set_of({
  "sourceObjectId", "sourceDataVersion", "name", "description", "status", "owner", "parent",
  "template", "group", "counterparty", "startDate", "endDate", "hasEndDate", "hiddenForEmployees",
  "hiddenForClients", "overdue", "isCloseToDeadline", "assignees", "participants", "auditors",
  "clientManagers", "isDeleted",
})
local PROJECT_DEFAULT = { "id", "name" }
local project_cf = cf_lookup("project")

local function get_project(id)
  local p = store.db.projects[id]
  if not p then api_error(404, 3000, "Project not found by id " .. id) end
  return p
end

route("POST", "/project/list", function(req)
  local b = req.json
  local offset, size = paging(b)
  local list = filtered(req, "project", store.db.projects, project_cf.def)
  return ok({ projects = project_all(page(list, offset, size), b.fields, PROJECT_DEFAULT, project_cf) })
end)

route("GET", "/project/templates", function(req)
  local offset, size = paging(req.query)
  local list = ordered(store.db.project_templates)
  local shown = util.query_value(req.query, "fields")
  return ok({ templates = project_all(page(list, offset, size), shown, PROJECT_DEFAULT, project_cf) })
end)

route("GET", "/project/groups", function()
  return ok({ groups = util.deepcopy(store.db.project_groups) })
end)

route("POST", "/project/", function(req)
  local b = require_object(req.json)
  require_name(b)
  local id = store.next_id("project")
  local rec = { id = id, name = b.name, status = { id = 2 }, isDeleted = false, _cf = {}, _files = {} }
  apply_fields(rec, b, PROJECT_FIELDS, project_cf)
  store.db.projects[id] = rec
  return created(id)
end)

route("GET", "/project/{id}", function(req, p)
  local pr = get_project(int_param(p.id, "project id"))
  return ok({ project = project(pr, util.query_value(req.query, "fields"), PROJECT_DEFAULT, project_cf) })
end)

route("POST", "/project/{id}", function(req, p)
  local id = int_param(p.id, "project id")
  local pr = store.db.projects[id]
  if not pr then api_error(404, 3000, "Project for update not found by id " .. id) end
  local failures, changed, notes = apply_fields(pr, require_object(req.json), PROJECT_FIELDS, project_cf)
  history(pr, req, changed, false, notes)
  return update_answer(failures)
end)

route("GET", "/project/{id}/files", function(req, p)
  local pr = get_project(int_param(p.id, "project id"))
  local offset, size = paging(req.query)
  local all = file_list(pr._files)
  return ok({ files = page(all, offset, size) })
end)

---------------------------------------------------------------- users

local USER_FIELDS = set_of({
  "sourceObjectId", "sourceDataVersion", "name", "midname", "lastname", "gender", "isDeleted",
  "birthDate", "groups", "role", "login", "password", "email", "secondaryEmails", "status", "phones",
  "languageCode", "communicationLanguageCode", "timezone", "position", "workspace", "personalManagers",
})
local USER_DEFAULT = { "id", "name" }
local user_cf = cf_lookup("user")

local function get_user(id)
  local u = store.db.users[id]
  if not u then api_error(404, 4000, "User not found by id " .. id) end
  return u
end

route("POST", "/user/list", function(req)
  local b = req.json
  local offset, size = paging(b)
  local list = filtered(req, "user", store.db.users, user_cf.def, function(u)
    return not (b.onlyActive == true and (u.isDeleted or u.status == "Inactive"))
  end)
  local out = project_all(page(list, offset, size), b.fields, USER_DEFAULT, user_cf)
  if b.prefixedId == true then
    for _, u in ipairs(out) do u.id = "user:" .. u.id end
  end
  return ok({ users = out })
end)

route("GET", "/user/groups", function()
  return ok({ groups = util.deepcopy(store.db.user_groups) })
end)

route("GET", "/user/positions/", function()
  return ok({ positions = util.deepcopy(store.db.positions) })
end)

route("POST", "/user/positions/", function(req)
  local b = require_object(req.json)
  local name = require_name(b)
  local id = store.next_id("position")
  table.insert(store.db.positions, { id = id, name = name })
  return created(id)
end)

route("POST", "/user/positions/{id}", function(req, p)
  local id = int_param(p.id, "position id")
  local b = require_object(req.json)
  for _, pos in ipairs(store.db.positions) do
    if pos.id == id then
      if type(b.name) == "string" then pos.name = b.name end
      return ok()
    end
  end
  api_error(404, 0, "Position not found by id " .. id)
end)

route("POST", "/user/", function(req)
  local b = require_object(req.json)
  require_name(b)
  if b.email ~= nil then
    for _, u in pairs(store.db.users) do
      if u.email == b.email then api_error(400, 4003, "E-mail is not unique") end
    end
  end
  local id = store.next_id("user")
  local rec = { id = id, name = b.name, isDeleted = false, role = "User", status = "Active", _cf = {} }
  apply_fields(rec, b, USER_FIELDS, user_cf)
  rec.password = nil -- never stored or returned
  store.db.users[id] = rec
  return created(id)
end)

route("GET", "/user/{id}", function(req, p)
  local u = get_user(prefixed_id(p.id, "user"))
  return ok({ user = project(u, util.query_value(req.query, "fields"), USER_DEFAULT, user_cf) })
end)

route("POST", "/user/{id}", function(req, p)
  local id = prefixed_id(p.id, "user")
  local u = store.db.users[id]
  if not u then api_error(404, 4000, "User for update not found by id " .. id) end
  local failures, changed, notes = apply_fields(u, require_object(req.json), USER_FIELDS, user_cf)
  u.password = nil
  history(u, req, changed, false, notes)
  return update_answer(failures)
end)

---------------------------------------------------------------- data tags

local DATATAG_DEFAULT = { "id", "name" }
local ENTRY_DEFAULT = { "dataTag", "key" }

local function get_datatag(id)
  local d = store.db.datatags[id]
  if not d then api_error(404, 6000, "Data tag not found by id " .. id) end
  return d
end

local function get_entry(key)
  local e = store.db.datatag_entries[key]
  if not e then api_error(404, 6010, "Data tag entry not found by key " .. key) end
  return e
end

local function entry_view(e, fields)
  local tag = store.db.datatags[e._tag] or {}
  return project(e, fields, ENTRY_DEFAULT, fields_lookup(tag.fields), {
    dataTag = function() return { id = tag.id, name = tag.name } end,
  })
end

route("POST", "/datatag/list", function(req)
  local b = req.json
  local offset, size = paging(b)
  return ok({ dataTags = project_all(page(ordered(store.db.datatags), offset, size), b.fields, DATATAG_DEFAULT) })
end)

route("GET", "/datatag/entry/{key}", function(req, p)
  local e = get_entry(int_param(p.key, "key"))
  return ok({ entry = entry_view(e, util.query_value(req.query, "fields")) })
end)

route("POST", "/datatag/entry/{key}", function(req, p)
  local e = get_entry(int_param(p.key, "key"))
  local tag = store.db.datatags[e._tag] or {}
  local failures, changed = apply_fields(e, require_object(req.json), {}, fields_lookup(tag.fields))
  history(e, req, changed)
  return update_answer(failures)
end)

route("DELETE", "/datatag/entry/{key}", function(_, p)
  local key = int_param(p.key, "key")
  get_entry(key)
  store.db.datatag_entries[key] = nil
  return ok()
end)

route("GET", "/datatag/{id}", function(req, p)
  local d = get_datatag(int_param(p.id, "data tag id"))
  return ok({ dataTag = project(d, util.query_value(req.query, "fields"), DATATAG_DEFAULT) })
end)

route("POST", "/datatag/{id}/entry/list", function(req, p)
  local id = int_param(p.id, "data tag id")
  get_datatag(id)
  local b = req.json
  local offset, size = paging(b)
  local task = b.taskId ~= nil and b.taskId ~= 0 and int_param(b.taskId, "taskId") or nil
  local contact = b.contactId ~= nil and b.contactId ~= 0 and prefixed_id(b.contactId, "contact") or nil
  local tag_fields = fields_lookup(store.db.datatags[id].fields).def
  local list = filtered(req, "datatag", store.db.datatag_entries, tag_fields, function(e)
    return e._tag == id and (not task or (e.task and e.task.id == task))
      and (not contact or (e.contact and e.contact.id == contact))
  end)
  local out = json.array()
  for _, e in ipairs(page(list, offset, size)) do out[#out + 1] = entry_view(e, b.fields) end
  return ok({ dataTagEntries = out })
end)

-- Adding entries through a task/contact: creates a comment holding them.
local function add_datatag_entries(req, kind, target_id, comment_id)
  local b = require_object(req.json)
  local tag_id = int_param(b.dataTag and b.dataTag.id or b.dataTagId, "dataTag.id")
  local tag = get_datatag(tag_id)
  if type(b.entries) ~= "table" then api_error(400, 40, "Required parameter missing: entries") end
  if not comment_id then
    comment_id = store.next_id("comment")
    local c = { id = comment_id, dateTime = util.timepoint(req.time), type = "Comment", description = "",
      owner = { id = "user:1", name = "Robot API" }, isDeleted = false, _files = {} }
    c[kind] = { id = target_id }
    store.db.comments[comment_id] = c
  else
    get_comment(comment_id)
  end
  local keys = json.array()
  for _, entry in ipairs(b.entries) do
    local key = store.next_id("datatag_entry")
    local e = { key = key, commentId = comment_id, _tag = tag_id, _cf = {} }
    e[kind] = { id = target_id }
    apply_fields(e, type(entry) == "table" and entry or {}, {}, fields_lookup(tag.fields))
    store.db.datatag_entries[key] = e
    keys[#keys + 1] = key
  end
  return 201, { result = "success", keys = keys, commentId = comment_id }
end

route("POST", "/task/{id}/datatags/", function(req, p)
  local id = task_id(p.id)
  get_task(id)
  return add_datatag_entries(req, "task", id)
end)

route("POST", "/task/{id}/datatags/{commentId}", function(req, p)
  local id = task_id(p.id)
  get_task(id)
  local status, body = add_datatag_entries(req, "task", id, int_param(p.commentId, "comment id"))
  body.commentId = nil
  return status, body
end)

route("POST", "/contact/{id}/datatags/", function(req, p)
  local id = prefixed_id(p.id, "contact")
  get_contact(id)
  return add_datatag_entries(req, "contact", id)
end)

route("POST", "/contact/{id}/datatags/{commentId}", function(req, p)
  local id = prefixed_id(p.id, "contact")
  get_contact(id)
  local status, body = add_datatag_entries(req, "contact", id, int_param(p.commentId, "comment id"))
  body.commentId = nil
  return status, body
end)

---------------------------------------------------------------- directories

local DIRECTORY_DEFAULT = { "id", "name" }
local DIR_ENTRY_DEFAULT = { "key", "name" }
local DIR_ENTRY_FIELDS = set_of({ "parentKey", "name", "isGroup", "archived" })

local function get_directory(id)
  local d = store.db.directories[id]
  if not d then api_error(404, 8000, "Directory not found by id " .. id) end
  return d
end

local function get_dir_entry(dir_id, key)
  local e = (store.db.directory_entries[dir_id] or {})[key]
  if not e then api_error(404, 8010, "Directory entry not found by key " .. key) end
  return e
end

local function dir_entry_view(d, e, fields)
  return project(e, fields, DIR_ENTRY_DEFAULT, fields_lookup(d.fields), {
    directory = function() return { id = d.id, name = d.name } end,
  })
end

route("POST", "/directory/list", function(req)
  local b = req.json
  local offset, size = paging(b)
  local group = b.groupId ~= nil and util.to_int(b.groupId) or nil
  local list = ordered(store.db.directories, function(d) return not group or d.group.id == group end)
  return ok({ directories = project_all(page(list, offset, size), b.fields, DIRECTORY_DEFAULT) })
end)

route("GET", "/directory/groups", function()
  return ok({ groups = util.deepcopy(store.db.directory_groups) })
end)

route("GET", "/directory/{id}", function(req, p)
  local d = get_directory(int_param(p.id, "directory id"))
  return ok({ directory = project(d, util.query_value(req.query, "fields"), DIRECTORY_DEFAULT) })
end)

route("POST", "/directory/{id}/filters", function(_, p)
  get_directory(int_param(p.id, "directory id"))
  return ok({ filters = json.array({ { id = ":all", name = "All entries" } }) })
end, { body = "none" })

route("POST", "/directory/{id}/entry/list", function(req, p)
  local id = int_param(p.id, "directory id")
  local d = get_directory(id)
  local b = req.json
  local offset, size = paging(b)
  local group = b.groupId ~= nil and b.groupId ~= json.null and int_param(b.groupId, "groupId") or nil
  local list = filtered(req, "directory", store.db.directory_entries[id] or {}, fields_lookup(d.fields).def,
    function(e)
      return (not group or e.parentKey == group) and not (b.groupsOnly == true and not e.isGroup)
        and not (b.entriesOnly == true and e.isGroup)
    end)
  local out = json.array()
  for _, e in ipairs(page(list, offset, size)) do out[#out + 1] = dir_entry_view(d, e, b.fields) end
  return ok({ directoryEntries = out })
end)

route("POST", "/directory/{id}/entry/", function(req, p)
  local id = int_param(p.id, "directory id")
  local d = get_directory(id)
  local b = require_object(req.json)
  store.db.directory_entries[id] = store.db.directory_entries[id] or {}
  local entries = store.db.directory_entries[id]
  local key = 1
  for k in pairs(entries) do if k >= key then key = k + 1 end end
  local e = { key = key, parentKey = 0, name = "", archived = false, isGroup = false, _cf = {} }
  local failures = apply_fields(e, b, DIR_ENTRY_FIELDS, fields_lookup(d.fields))
  if #failures > 0 then
    api_error(400, 8011, "Error add entry: " .. failures[1].field .. ": " .. failures[1].error)
  end
  if e.name == "" then
    -- Entries added with only custom fields are named by the first one.
    local first = d.fields[1] and e._cf[d.fields[1].id]
    if type(first) == "string" then e.name = first end
  end
  entries[key] = e
  return ok({ key = key })
end)

route("GET", "/directory/{id}/entry/{key}", function(req, p)
  local id = int_param(p.id, "directory id")
  local d = get_directory(id)
  local e = get_dir_entry(id, int_param(p.key, "key"))
  return ok({ entry = dir_entry_view(d, e, util.query_value(req.query, "fields")) })
end)

route("POST", "/directory/{id}/entry/{key}", function(req, p)
  local id = int_param(p.id, "directory id")
  local d = get_directory(id)
  local e = get_dir_entry(id, int_param(p.key, "key"))
  local failures, changed = apply_fields(e, require_object(req.json), DIR_ENTRY_FIELDS, fields_lookup(d.fields))
  history(e, req, changed)
  return update_answer(failures)
end)

route("DELETE", "/directory/{id}/entry/{key}", function(_, p)
  local id = int_param(p.id, "directory id")
  get_directory(id)
  local key = int_param(p.key, "key")
  get_dir_entry(id, key)
  store.db.directory_entries[id][key] = nil
  return ok()
end)

---------------------------------------------------------------- files

local FILE_DEFAULT = { "id", "name" }

local function get_file(id)
  local f = store.db.files[id]
  if not f then api_error(404, 7000, "File not found by id " .. id) end
  return f
end

-- scheme://host:port of this request, for absolute download URLs.
local function origin()
  local host = ngx.var.http_host
  if not host or host == "" then host = ngx.var.server_addr .. ":" .. ngx.var.server_port end
  return ngx.var.scheme .. "://" .. host
end

local token_counter = 0

-- A presigned-style URL: unguessable token, valid download_ttl seconds.
local function download_url(f, now)
  token_counter = token_counter + 1
  local token = ngx.md5(table.concat({ f.id, now, token_counter, math.random() }, ":"))
  store.db.downloads[token] = { file = f.id, expires = now + M.config.download_ttl }
  return (M.config.download_origin or origin()) .. "/files-download/" .. token .. "/" .. ngx.escape_uri(f.name)
end

M.download_url = download_url

local function attach(kind, f, target_id)
  local getters = { task = get_task, contact = get_contact, project = get_project }
  local rec = getters[kind](target_id)
  rec._files = rec._files or {}
  for _, fid in ipairs(rec._files) do
    if fid == f.id then return end
  end
  rec._files[#rec._files + 1] = f.id
  f._targets[#f._targets + 1] = { type = kind, id = target_id }
end

route("POST", "/file/", function(req)
  local target = util.query_value(req.query, "targetType") or "task"
  if target ~= "task" and target ~= "directory" then
    api_error(400, 41, "Invalid parameter value: targetType")
  end
  local boundary = multipart.boundary(req.headers["content-type"])
  if not boundary then api_error(400, 41, "Invalid parameter value: multipart/form-data expected") end
  local parts, err = multipart.parse(req.body, boundary)
  if not parts then api_error(400, 7001, "Rest API error upload file: " .. err) end
  local part
  for _, pt in ipairs(parts) do
    if pt.name == "file" then part = pt break end
  end
  if not part then api_error(400, 40, "Required parameter missing: file") end
  local id = store.next_id("file")
  store.db.files[id] = {
    id = id, name = part.filename or "file", content = part.data,
    content_type = part.content_type or "application/octet-stream",
    targetType = target, _targets = {},
  }
  return ok({ id = id })
end, { body = "multipart" })

route("POST", "/file/from-url/", function(req)
  local b = require_object(req.json)
  if type(b.url) ~= "string" or b.url == "" then api_error(400, 40, "Required parameter missing: url") end
  local host = b.url:match("^%a+://([^/:?#]+)") or ""
  if host:lower():match("planfix%.%a+$") then api_error(400, 41, "Invalid parameter value: url") end
  -- No network here: the "downloaded" content just names the source.
  local id = store.next_id("file")
  store.db.files[id] = {
    id = id, name = type(b.name) == "string" and b.name or (b.url:match("([^/?#]+)$") or "file"),
    content = "downloaded from " .. b.url .. "\n", content_type = "application/octet-stream",
    source_url = b.url, _targets = {},
  }
  return ok({ id = id })
end)

route("GET", "/file/{id}", function(req, p)
  local f = get_file(int_param(p.id, "file id"))
  local computed = {
    size = function() return math.ceil(#f.content / 1024) end,
    downloadUrl = function() return download_url(f, req.time) end,
    link = function() return f.link or "" end,
  }
  return ok({ file = project(f, util.query_value(req.query, "fields"), FILE_DEFAULT, nil, computed) })
end)

route("POST", "/file/{id}", function(req, p)
  local f = get_file(int_param(p.id, "file id"))
  local b = require_object(req.json)
  if type(b.name) == "string" and b.name ~= "" then f.name = b.name end
  return ok()
end)

route("DELETE", "/file/{id}", function(_, p)
  local id = int_param(p.id, "file id")
  local f = get_file(id)
  for _, t in ipairs(f._targets) do
    local coll = ({ task = store.db.tasks, contact = store.db.contacts, project = store.db.projects })[t.type]
    local rec = coll and coll[t.id]
    if rec and rec._files then
      for i = #rec._files, 1, -1 do
        if rec._files[i] == id then table.remove(rec._files, i) end
      end
    end
  end
  store.db.files[id] = nil
  return ok()
end)

route("GET", "/file/{id}/download", function(req, p)
  local f = get_file(int_param(p.id, "file id"))
  return 302, nil, { Location = download_url(f, req.time) }
end)

for _, kind in ipairs({ "task", "contact", "project" }) do
  route("POST", "/file/{id}/attach/" .. kind, function(req, p)
    local f = get_file(int_param(p.id, "file id"))
    local target = util.query_value(req.query, "id")
    if target == nil or target == true or target == "" then api_error(400, 40, "Required parameter missing: id") end
    local target_id = kind == "contact" and prefixed_id(target, "contact") or int_param(target, kind .. " id")
    attach(kind, f, target_id)
    return ok()
  end, { body = "none" })
end

-- GET /files-download/<token>/<name>: the "presigned" URL. No auth.
function M.download()
  local token = ngx.var.uri:match("^/files%-download/([^/]+)/")
  local d = token and store.db.downloads[token]
  ngx.update_time()
  local f = d and d.expires >= ngx.now() and store.db.files[d.file]
  if not f then
    return 403, "Access denied: bad or expired download token\n", { ["Content-Type"] = "text/plain" }
  end
  return 200, f.content, {
    ["Content-Type"] = f.content_type or "application/octet-stream",
    ["Content-Disposition"] = 'attachment; filename="' .. f.name:gsub('[%c"\\]', "_") .. '"',
  }
end

---------------------------------------------------------------- processes, custom fields, misc

local function processes(kind)
  return function()
    local out = json.array()
    for _, pr in ipairs(store.db.processes[kind]) do out[#out + 1] = { id = pr.id, name = pr.name } end
    return ok({ processes = out })
  end
end

local function statuses_of(process_id, fields)
  for _, pr in ipairs(store.db.processes.task) do
    if pr.id == process_id then
      local out = json.array()
      local all = { "id", "name", "color", "isActive", "hasDeadline", "isAppliedIndividually", "texts" }
      for _, sid in ipairs(pr.statuses) do
        out[#out + 1] = project(store.db.statuses[sid], fields, all)
      end
      return out
    end
  end
  return nil
end

route("GET", "/process/task", processes("task"))
route("GET", "/process/contact", processes("contact"))

route("GET", "/process/task/{id}/statuses", function(req, p)
  local id = int_param(p.id, "process id")
  local out = statuses_of(id, util.query_value(req.query, "fields"))
  if not out then api_error(404, 0, "Process not found by id " .. id) end
  return ok({ statuses = out })
end)

route("GET", "/customfield/type", function()
  local out = json.array()
  for _, id in ipairs(cf_rules.TYPE_IDS) do out[#out + 1] = { id = id, name = cf_rules.TYPES[id] } end
  return ok({ customFieldTypes = out })
end)

-- The definitions of a kind; `fields` picks their properties (id always).
local function definitions(kind, req)
  local names = util.split_list(util.query_value(req.query, "fields"))
  local out = json.array()
  for i, def in ipairs(store.db.customfields[kind]) do
    local view = cf_rules.view(def)
    if #names > 0 then
      local picked = { id = view.id }
      for _, n in ipairs(names) do picked[n] = view[n] end
      view = picked
    end
    out[i] = view
  end
  return ok({ customfields = out })
end

local DEF_KEYS = { "names", "groupId", "directoryId", "directoryFields", "enumValues", "mainValue" }

-- POST /customfield/{kind}/: a new definition; the type must be one that
-- GET /customfield/type lists.
local function add_definition(kind, b)
  require_name(b)
  local ty = util.to_int(b.type)
  if ty == nil then api_error(400, 40, "Required parameter missing: type") end
  if not cf_rules.TYPES[ty] then api_error(400, 41, "Invalid parameter value: type") end
  local id = store.next_id("customfield")
  local def = { id = id, name = b.name, type = ty, objectType = cf_rules.OBJECT_TYPES[kind] }
  for _, k in ipairs(DEF_KEYS) do
    if b[k] ~= nil and b[k] ~= json.null then def[k] = util.deepcopy(b[k]) end
  end
  table.insert(store.db.customfields[kind], def)
  return id
end

for _, kind in ipairs({ "task", "contact", "project", "user", "main" }) do
  local function list(req) return definitions(kind, req) end
  route("GET", "/customfield/" .. kind, list)
  if kind ~= "main" then
    -- Observed: the per-object variant returns the whole list.
    local getters = { task = function(v) get_task(task_id(v)) end,
      contact = function(v) get_contact(prefixed_id(v, "contact")) end,
      project = function(v) get_project(int_param(v, "project id")) end,
      user = function(v) get_user(prefixed_id(v, "user")) end }
    route("GET", "/customfield/" .. kind .. "/{id}", function(req, p)
      getters[kind](p.id)
      return list(req)
    end)
    route("GET", "/customfield/group/" .. kind, function()
      return ok({ customFieldSets = json.array() })
    end)
    route("POST", "/customfield/group/" .. kind .. "/", function(req)
      require_name(require_object(req.json))
      return created(store.next_id("customfield"))
    end)
  else
    route("POST", "/customfield/main/{id}", function(req, p)
      local id = int_param(p.id, "custom field id")
      local f = store.customfield("main", id)
      if not f then api_error(404, 0, "Custom field not found by id " .. id) end
      local b = require_object(req.json)
      if type(b.name) == "string" then f.name = b.name end
      return ok()
    end)
  end
  route("POST", "/customfield/" .. kind .. "/", function(req)
    return created(add_definition(kind, require_object(req.json)))
  end)
end

route("GET", "/customfield/datatag/{id}", function(_, p)
  local d = get_datatag(int_param(p.id, "data tag id"))
  return ok({ customfields = json.array(util.deepcopy(d.fields)) })
end)

route("GET", "/customfield/directory/{id}", function(_, p)
  local d = get_directory(int_param(p.id, "directory id"))
  return ok({ customfields = json.array(util.deepcopy(d.fields)) })
end)

route("GET", "/workspace/list", function()
  return ok({ workspaces = util.deepcopy(store.db.workspaces) })
end)

-- "Objects" (task types): one default object using the default process.
route("POST", "/object/list", function(req)
  local offset, size = paging(req.json)
  return ok({ objects = page({ { id = 1, name = "Task" } }, offset, size) })
end)

route("GET", "/object/{id}", function(_, p)
  local id = int_param(p.id, "object id")
  if id ~= 1 then api_error(404, 0, "Object not found by id " .. id) end
  return ok({ object = { id = 1, name = "Task" } })
end)

route("GET", "/object/{id}/statuses", function(req, p)
  local id = int_param(p.id, "object id")
  if id ~= 1 then api_error(404, 0, "Object not found by id " .. id) end
  return ok({ statuses = statuses_of(1, util.query_value(req.query, "fields")) })
end)

---------------------------------------------------------------- reports

local function get_report(id)
  local r = store.db.reports[id]
  if not r then api_error(404, 9000, "Report not found by id " .. id) end
  return r
end

local function save_view(sv)
  return { id = sv.id, reportId = sv.reportId, name = sv.name, chunksCount = sv.chunksCount,
    dateTime = sv.dateTime }
end

route("POST", "/report/list", function(req)
  local b = req.json
  local offset, size = paging(b)
  return ok({ reports = project_all(page(ordered(store.db.reports), offset, size), b.fields, { "id", "name" }) })
end)

route("GET", "/report/status/{requestId}", function(req, p)
  local rq = store.db.report_requests[p.requestId]
  if not rq then api_error(400, 9003, "Request id does not exist") end
  -- Ready after `report_polls` polls answered "in_progress".
  if rq.polls < M.config.report_polls then
    rq.polls = rq.polls + 1
    return ok({ status = "in_progress" })
  end
  if not rq.save then
    local id = store.next_id("report_save")
    local seed = store.db.report_saves[1]
    store.db.report_saves[id] = { id = id, reportId = rq.report, name = "Generated report save",
      chunksCount = 1, dateTime = util.timepoint(req.time), _chunks = { util.deepcopy(seed._chunks[1]) } }
    rq.save = id
  end
  return ok({ status = "ready", save = save_view(store.db.report_saves[rq.save]) })
end)

route("GET", "/report/{id}", function(req, p)
  local r = get_report(int_param(p.id, "report id"))
  return ok({ report = project(r, util.query_value(req.query, "fields"), { "id", "name", "fields" }) })
end)

route("POST", "/report/{id}/save/list", function(_, p)
  local id = int_param(p.id, "report id")
  get_report(id)
  local out = json.array()
  for _, sv in ipairs(ordered(store.db.report_saves, function(sv) return sv.reportId == id end)) do
    out[#out + 1] = save_view(sv)
  end
  return ok({ saves = out })
end, { write = false })

route("POST", "/report/{id}/save/{saveId}/data", function(req, p)
  local id = int_param(p.id, "report id")
  get_report(id)
  local sid = int_param(p.saveId, "save id")
  local sv = store.db.report_saves[sid]
  if not sv or sv.reportId ~= id then api_error(404, 9000, "Report save not found by id " .. sid) end
  local chunk = util.to_int(util.query_value(req.query, "chunk") or 0)
  if not chunk or chunk < 0 or chunk >= sv.chunksCount then api_error(400, 41, "Invalid parameter value: chunk") end
  return ok({ chunk = chunk, rows = util.deepcopy(sv._chunks[chunk + 1]) })
end, { write = false, body = "none" })

route("POST", "/report/{id}/generate", function(_, p)
  local id = int_param(p.id, "report id")
  get_report(id)
  -- At most one generation in flight (Planfix: code 9002).
  for rid, rq in pairs(store.db.report_requests) do
    if not rq.save then api_error(403, 9002, "Report already in progress by requestId - " .. rid) end
  end
  token_counter = token_counter + 1
  local rid = ngx.md5("report:" .. token_counter .. ":" .. math.random())
  store.db.report_requests[rid] = { report = id, polls = 0 }
  return 201, { result = "success", requestId = rid }
end, { body = "none" })

route("POST", "/integration/telegram/bots/{botId}/webhook", function(req, p)
  local id = int_param(p.botId, "botId")
  local bot = store.db.telegram_bots[id]
  if not bot then api_error(404, 41, "Telegram bot not found") end
  local b = require_object(req.json)
  if b.secretToken == nil and b.webhookManagedExternally == nil then
    api_error(400, 40, "secretToken or webhookManagedExternally is required")
  end
  if b.secretToken ~= nil then
    local t = b.secretToken
    if type(t) ~= "string" or #t < 32 or #t > 256 or t:find("[^%w_%-]") then
      api_error(400, 41, "secretToken must be 32-256 chars and contain only A-Z, a-z, 0-9, _ or -")
    end
    bot.secret = true
  end
  if b.webhookManagedExternally ~= nil then bot.webhookManagedExternally = b.webhookManagedExternally == true end
  return ok({ botId = id, webhookManagedExternally = bot.webhookManagedExternally,
    webhookSecretTokenConfigured = bot.secret })
end)

---------------------------------------------------------------- pipeline

local function parse_body(req, route_)
  if route_.body ~= "json" then
    req.json = {}
    return
  end
  local body = req.body
  if body:match("^%s*$") then
    req.json = {}
    return
  end
  local v = json.decode(body)
  if v == nil then api_error(400, 30, "Invalid JSON") end
  -- cjson gives no object/array distinction; a non-empty sequence is an array.
  if type(v) ~= "table" or #v > 0 then api_error(400, 30, "Invalid JSON: object expected") end
  req.json = v
end

local function merge_headers(a, b)
  if not b then return a end
  a = a or {}
  for k, v in pairs(b) do a[k] = v end
  return a
end

-- Answers one API request (path relative to /rest). Returns status,
-- body (table, or nil for a bodiless answer) and headers.
-- Requests per operation ("GET /customfield/task": the method and the
-- spec's path), whatever they were answered with, for /_sandbox/stats.
M.operations = {}

local function name_operation(req)
  local r = R:match(req.method, req.path)
  if not r then return end
  req.operation = r.method .. " " .. r.pattern
  M.operations[req.operation] = (M.operations[req.operation] or 0) + 1
end

function M.handle(req)
  name_operation(req)
  local status, code, msg = auth.check(req)
  if status then
    return status, fail_body(code, msg), ratelimit.headers()
  end
  local rstatus, rbody, rheaders = ratelimit.check()
  if rstatus then
    return rstatus, rbody, merge_headers(rheaders, ratelimit.headers())
  end
  local headers = ratelimit.headers()

  local r, params = R:match(req.method, req.path)
  if not r then
    return 404, fail_body(0, "Rest API error"), headers
  end
  if not auth.allows(req, r.write) then
    return 405, fail_body(5, "Scope denied, method not allowed"), headers
  end

  local okp, s, body, extra = pcall(function()
    parse_body(req, r)
    return r.handler(req, params)
  end)
  if not okp then
    local e = s
    if getmetatable(e) == API_ERROR then
      return e.status, fail_body(e.code, e.message), headers
    end
    ngx.log(ngx.ERR, "rest handler error on ", req.method, " ", req.path, ": ", tostring(e))
    return 500, fail_body(0, "Rest API error"), headers
  end
  return s, body, merge_headers(headers, extra)
end

return M
