-- The emulated Planfix XML API ("XML API v1"): POST /xml/ with a <request>
-- body, answers <response status="ok|error">. See Planfix's XML API documentation and the
-- "Planfix XML API" part of sandbox/README.md.
--
-- Pipeline: HTTP method, XML parse, method name, account, API key,
-- signature, token or session, rate, quota, token scope, handler. Data is
-- the REST store (sandbox.store): tasks, contacts, projects, users, files,
-- comments (= actions) and directories (= handbooks).
local json = require("sandbox.json")
local util = require("sandbox.util")
local store = require("sandbox.store")
local ratelimit = require("sandbox.ratelimit")
local xml = require("sandbox.xml")
local scenarios = require("sandbox.planfix_scenarios")
local cf_rules = require("sandbox.planfix_fields")
local credentials = require("sandbox.credentials")

local L, E = xml.leaf, xml.el

local M = {}

---------------------------------------------------------------- config and state

local function default_config()
  return {
    account = credentials.xml.account,
    api_key = credentials.xml.api_key,
    private_key = credentials.xml.private_key,
    error_status = 200,     -- HTTP status of error answers (the real one is unknown)
    session_ttl = 3600,     -- seconds a login-mode session lives
    session_sliding = false, -- true: every call extends the session
    update_resets = true,   -- task.update resets omitted fields (XML API documentation)
  }
end

local function default_tokens()
  return {
    [credentials.xml.token] = { scope = "all" },
    ["readonly-xml-token"] = { scope = "readonly" },
  }
end

-- Login-mode users: login -> { password, user id }.
local LOGINS = { [credentials.xml.login] = { password = credentials.xml.password, user = 1 } }

function M.reset()
  M.config = default_config()
  M.tokens = default_tokens()
  M.sessions = {}      -- sid -> { created, last, user }
  M.logins = 0         -- successful auth.login calls
  M.login_failures = 0 -- auth.login calls with a wrong login or password
end
M.reset()

function M.configure(cfg)
  if cfg == nil then return true end
  if type(cfg) ~= "table" then return nil, "xml must be an object" end
  local c = M.config
  for k, v in pairs(cfg) do
    if k == "error_status" then
      local n = util.to_int(v)
      if not n or n < 100 or n > 599 then return nil, "xml.error_status must be 100..599" end
      c.error_status = n
    elseif k == "session_ttl" then
      local n = util.to_number(v)
      if not n or n < 0 then return nil, "xml.session_ttl must be a number >= 0" end
      c.session_ttl = n
    elseif k == "session_sliding" or k == "update_resets" then
      if type(v) ~= "boolean" then return nil, "xml." .. k .. " must be true or false" end
      c[k] = v
    elseif k == "account" or k == "api_key" or k == "private_key" then
      if type(v) ~= "string" or v == "" then return nil, "xml." .. k .. " must be a non-empty string" end
      c[k] = v
    elseif k == "tokens" then
      if type(v) ~= "table" then return nil, "xml.tokens must be an object" end
      for name, t in pairs(v) do
        if t == false then
          M.tokens[name] = nil
        elseif type(t) == "table" and (t.scope == nil or t.scope == "all" or t.scope == "readonly") then
          M.tokens[name] = { scope = t.scope or "all" }
        else
          return nil, "xml.tokens values must be {scope = 'all'|'readonly'} or false"
        end
      end
    else
      return nil, "unknown config key 'xml." .. tostring(k) .. "'"
    end
  end
  return true
end

function M.describe()
  local c = util.deepcopy(M.config)
  c.tokens = util.deepcopy(M.tokens)
  return { xml = c }
end

-- Ends every session now; returns how many there were.
function M.expire_sessions()
  local n = 0
  for _ in pairs(M.sessions) do n = n + 1 end
  M.sessions = {}
  return n
end

function M.session_list()
  ngx.update_time()
  local now = ngx.now()
  local out = json.array()
  for sid, s in pairs(M.sessions) do
    out[#out + 1] = { sid = sid, user = s.user, age = now - s.created, idle = now - s.last }
  end
  table.sort(out, function(a, b) return a.sid < b.sid end)
  return out
end

---------------------------------------------------------------- errors

local XERR = {}

local function fail(code, message)
  error(setmetatable({ code = code, message = message }, XERR), 0)
end

---------------------------------------------------------------- methods (XML API documentation)

local ALL_METHODS = {
  "auth.login", "action.add", "action.delete", "action.get", "action.getList", "action.getListByPeriod",
  "action.getListWithAnalitic", "action.update", "analitic.getData", "analitic.getDataByCondition",
  "analitic.getGroupList", "analitic.getHandbook", "analitic.getList", "analitic.getOptions",
  "contact.add", "contact.delete", "contact.get", "contact.getFilterList", "contact.getGroupList",
  "contact.getList", "contact.getPhoneTypes", "contact.managePlanfixAccess", "contact.update",
  "contact.updateContractors", "contact.updateCustomData", "contact.updateUserInfo",
  "file.delete", "file.download", "file.get", "file.getHistory", "file.getListForClient",
  "file.getListForProject", "file.getListForTask", "file.getListForUser", "file.upload",
  "handbook.addRecord", "handbook.getGroupList", "handbook.getList", "handbook.getRecord",
  "handbook.getRecordMulti", "handbook.getRecords", "handbook.getStructure", "handbook.updateRecord",
  "project.add", "project.get", "project.getList", "project.update",
  "projectGroup.add", "projectGroup.get", "projectGroup.getList", "projectGroup.move", "projectGroup.update",
  "task.accept", "task.add", "task.changeExpectDate", "task.changeStatus", "task.changeWorkers",
  "task.get", "task.getFilterList", "task.getList", "task.getMulti", "task.getPossibleStatusToChange",
  "task.reject", "task.update", "task.updateCustomData",
  "taskStatus.getListOfSet", "taskStatus.getSetList",
  "user.actionsAdded", "user.add", "user.changeStatus", "user.get", "user.getList", "user.update",
  "user.updateGroupMembership", "userGroup.add", "userGroup.get", "userGroup.getHeads",
  "userGroup.getList", "userGroup.update",
}
local KNOWN = {}
for _, m in ipairs(ALL_METHODS) do KNOWN[m] = true end
M.METHODS = ALL_METHODS

-- Read methods (allowed to a readonly token): get*, file.download, auth.login, user.actionsAdded.
local function is_write(method)
  local verb = method:match("%.(.*)$") or ""
  if verb:sub(1, 3) == "get" then return false end
  return not (method == "file.download" or method == "auth.login" or method == "user.actionsAdded")
end

---------------------------------------------------------------- parameters

-- Text of the element at path, or nil when the element is missing or empty.
local function param(root, path)
  local v = xml.text(root, path)
  if v == nil or v == "" then return nil end
  return v
end

local function need(root, path)
  local v = param(root, path)
  if not v then fail("0009", "A required parameter is missing: " .. path) end
  return v
end

local function int(v, what)
  if type(v) == "string" and v:match("^%d+$") then return tonumber(v) end
  fail("0015", "Invalid parameter value: " .. what)
end

local function opt_int(root, path)
  local v = param(root, path)
  if v == nil then return nil end
  return int(v, path)
end

local function bool01(v)
  if v == nil then return nil end
  if v == "1" or v == "true" then return true end
  if v == "0" or v == "false" then return false end
  fail("0015", "Invalid parameter value: expected 0 or 1")
end

-- Days since 1970-01-01 of a civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- "dd-mm-yyyy" or "dd-mm-yyyy hh:mm" (UTC in the sandbox) -> unix time.
local function parse_datetime(s, what)
  local d, mo, y, rest = s:match("^(%d%d)%-(%d%d)%-(%d%d%d%d)(.*)$")
  local h, mi = 0, 0
  if d and rest ~= "" then
    h, mi = rest:match("^ (%d%d):(%d%d)$")
    if not h then d = nil end
  end
  d, mo, y, h, mi = tonumber(d), tonumber(mo), tonumber(y), tonumber(h), tonumber(mi)
  if not d or mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 then
    fail("0015", "Invalid parameter value: " .. what .. " (dd-mm-yyyy[ hh:mm])")
  end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60
end

-- pageCurrent (1-based, default 1; < 1 = count only) and pageSize (0 or
-- missing = 100, at most 100: 0021).
local function paging(root)
  local size = opt_int(root, "pageSize") or 0
  if size == 0 then size = 100 end
  if size > 100 then fail("0021", "Requested number of objects exceeds the maximum for this function (100)") end
  local pc = param(root, "pageCurrent")
  local current = 1
  if pc ~= nil then
    if pc:match("^%-?%d+$") then current = tonumber(pc) else int(pc, "pageCurrent") end
  end
  return current, size
end

local function slice(list, current, size)
  local out = {}
  local first = (current - 1) * size + 1
  for i = first, math.min(#list, first + size - 1) do out[#out + 1] = list[i] end
  return out
end

-- A list answer with count/totalCount: <name count="N" totalCount="M">.
-- pageCurrent < 1 answers only <name totalCount="M"/>.
local function counted_list(name, list, root, render)
  local current, size = paging(root)
  if current < 1 then return E(name, nil, { { "totalCount", #list } }) end
  local items = {}
  for _, r in ipairs(slice(list, current, size)) do items[#items + 1] = render(r) end
  return E(name, items, { { "count", #items }, { "totalCount", #list } })
end

---------------------------------------------------------------- values

-- general numbers (the numbers users see) of tasks, contacts and projects.
local GENERAL_OFFSET = 1000
local function general(id) return id + GENERAL_OFFSET end

local function ordered(tbl, pred)
  local out = {}
  for _, id in ipairs(util.sorted_ids(tbl)) do
    local r = tbl[id]
    if not pred or pred(r) then out[#out + 1] = r end
  end
  return out
end

-- Text of a stored value: booleans 1/0, integral numbers without ".0".
local function value_text(v)
  if v == nil or v == json.null then return "" end
  if v == true then return "1" end
  if v == false then return "0" end
  if type(v) == "number" then
    if v % 1 == 0 and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return tostring(v)
  end
  if type(v) == "table" then return "" end
  return tostring(v)
end

-- "dd-mm-yyyy hh:mm" of a REST timepoint (or "").
local function dt(tp)
  if type(tp) ~= "table" or not tp.date then return "" end
  return tp.date .. " " .. (tp.time or "00:00")
end

-- Store values may be anything a REST client sent (null, numbers...).
local function str(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return value_text(v) end
  return ""
end

-- The id of a {id = ...} reference, or nil.
local function idof(v)
  return type(v) == "table" and v.id or nil
end

local function ref_id(ref) -- "user:2" -> 2
  if type(ref) ~= "table" or ref.id == nil then return nil end
  if type(ref.id) == "number" then return ref.id end
  return tonumber(tostring(ref.id):match("(%d+)$"))
end

local function user_name(id)
  local u = store.db.users[id]
  if not u then return "" end
  return ((str(u.name) .. " " .. str(u.lastname)):gsub("%s+$", ""))
end

-- Lower case for ASCII and Cyrillic (search is case-insensitive in both).
local function lower(s)
  s = s:lower():gsub("\208([\144-\175])", function(c)
    local b = c:byte()
    if b < 0xA0 then return "\208" .. string.char(b + 0x20) end
    return "\209" .. string.char(b - 0x20)
  end)
  return (s:gsub("\208\129", "\209\145"))
end

local function contact_name(c)
  return ((str(c.name) .. " " .. str(c.lastname)):gsub("%s+$", ""))
end

local function people_ids(p)
  local out = {}
  for _, u in ipairs(type(p) == "table" and p.users or {}) do
    local id = ref_id(u)
    if id then out[#out + 1] = id end
  end
  return out
end

local function people_of(ids)
  local list = {}
  for _, id in ipairs(ids) do
    list[#list + 1] = { id = "user:" .. id, name = user_name(id) }
  end
  return { users = json.array(list), groups = json.array() }
end

-- <name><users><id>..</id>*</users></name>
local function people_xml(name, p)
  local ids = {}
  for _, id in ipairs(people_ids(p)) do ids[#ids + 1] = L("id", id) end
  return E(name, { E("users", ids) })
end

-- The text of a custom field's stored value (def may be nil).
local function cf_text(def, v)
  if type(v) == "table" and v ~= json.null then return cf_rules.xml_table_text(def, v) end
  return value_text(v)
end

-- customData/customValue*/{id,value} of the fields of rec's template (all
-- of them without one), in field id order.
local function custom_xml(rec, kind)
  local items = {}
  local cf = rec._cf or {}
  for _, id in ipairs(util.sorted_ids(cf)) do
    if cf_rules.attached(store.db, kind, rec, id) then
      items[#items + 1] = E("customValue", { L("id", id), L("value", cf_text(store.customfield(kind, id), cf[id])) })
    end
  end
  return E("customData", items)
end

-- Reads customData/customValue*/{id,value} of `node` into rec._cf; every id
-- must be a custom field of `kind`, every value one its type takes. Writes
-- that succeed without storing (sandbox.planfix_fields: a field not on the
-- template, a read-only type) are left in rec._cf_notes for history().
local function apply_custom(rec, node, kind)
  local cd = xml.child(node, "customData")
  if not cd then return false end
  rec._cf = rec._cf or {}
  rec._cf_notes = rec._cf_notes or {}
  for _, cv in ipairs(cd.children) do
    if cv.name == "customValue" then
      local id = int(xml.text(cv, "id") or "", "customValue.id")
      local def = store.customfield(kind, id)
      if not def then fail("0015", "Invalid parameter value: custom field " .. id) end
      local given = cf_rules.from_xml_text(def, xml.text(cv, "value"))
      local what, value, note = cf_rules.write(store.db, kind, rec, def, given)
      if what == "failed" then fail("0015", "Invalid parameter value: custom field " .. id .. " value") end
      if what == "stored" then rec._cf[id] = value end
      if note or what == "ignored" then
        local why = what == "ignored" and ("ignored, " .. value) or note
        rec._cf_notes[#rec._cf_notes + 1] = "customData." .. id .. ": " .. why
      end
    end
  end
  return true
end

---------------------------------------------------------------- tasks

local function find_task(node)
  local id = param(node, "id")
  if id then return store.db.tasks[int(id, "task.id")] end
  local g = param(node, "general")
  if g then return store.db.tasks[int(g, "task.general") - GENERAL_OFFSET] end
  fail("0009", "A required parameter is missing: task.id or task.general")
end

local function get_task(root, path)
  local node = xml.find(root, path or "task")
  if not node then fail("0009", "A required parameter is missing: task.id") end
  local t = find_task(node)
  if not t then fail("3001", "Task does not exist") end
  return t
end

local function task_xml(t, full)
  local p = {
    L("id", t.id), L("general", general(t.id)), L("title", t.name), L("description", t.description),
    L("importance", t.priority == "Urgent" and "HIGH" or "AVERAGE"),
    L("status", idof(t.status) or 1), L("statusSet", t.processId or 1),
    L("checkResult", t.resultChecking and 1 or 0), L("type", t.type == "Template" and "template" or "task"),
  }
  local owner = ref_id(t.assigner) or 1
  p[#p + 1] = E("owner", { L("id", owner), L("name", user_name(owner)) })
  p[#p + 1] = E("parent", { L("id", idof(t.parent) or 0) })
  local pid = idof(t.project) or 0
  local pr = store.db.projects[pid]
  p[#p + 1] = E("project", { L("id", pid), L("title", pr and pr.name or "") })
  local cid = ref_id(t.counterparty)
  local c = cid and store.db.contacts[cid]
  p[#p + 1] = E("client", { L("id", cid or 0), L("name", c and contact_name(c) or "") })
  p[#p + 1] = L("beginDateTime", dt(t.dateTime))
  if type(t.endDateTime) == "table" then p[#p + 1] = L("endTime", dt(t.endDateTime)) end
  p[#p + 1] = people_xml("workers", t.assignees)
  if full then
    p[#p + 1] = people_xml("members", t.participants)
    p[#p + 1] = people_xml("auditors", t.auditors)
  end
  p[#p + 1] = custom_xml(t, "task")
  return E("task", p)
end

local function history(rec, req, silent, changed, reset)
  rec._history = rec._history or {}
  rec._history[#rec._history + 1] = {
    time = req.time, silent = silent, fields = json.array(changed), reset = json.array(reset or {}),
    queued = false, token = req.xml_token or json.null, sid = req.xml_sid or json.null, api = "xml",
    method = req.xml_method, notes = json.array(rec._cf_notes or {}),
  }
  rec._cf_notes = nil
  rec.dateOfLastUpdate = util.timepoint(req.time)
end

local function check_user(id)
  if not store.db.users[id] then fail("6004", "User does not exist: " .. id) end
  return id
end

-- Applies the task.add / task.update fields present under <task> to t.
-- Returns the changed field names.
local function apply_task(t, node, creating)
  local changed = {}
  local function mark(n) changed[#changed + 1] = n end
  local title = xml.raw_text(node, "title")
  if title ~= nil then
    if title:match("^%s*$") then fail("0015", "Invalid parameter value: task.title") end
    t.name = title; mark("title")
  end
  local desc = xml.child(node, "description")
  if desc then t.description = xml.raw_text(desc) or ""; mark("description") end
  local imp = param(node, "importance")
  if imp then
    if imp ~= "AVERAGE" and imp ~= "HIGH" then fail("0015", "Invalid parameter value: task.importance") end
    t.priority = imp == "HIGH" and "Urgent" or "NotUrgent"; mark("importance")
  end
  local st = param(node, "status")
  if st then
    local id = int(st, "task.status")
    if not store.db.statuses[id] then fail("0015", "Invalid parameter value: task.status") end
    t.status = store.status_ref(id); mark("status")
  end
  local set = opt_int(node, "statusSet")
  if set then t.processId = set; mark("statusSet") end
  local cr = param(node, "checkResult")
  if cr then t.resultChecking = bool01(cr); mark("checkResult") end
  local owner = opt_int(node, "owner.id")
  if owner then t.assigner = { id = "user:" .. check_user(owner), name = user_name(owner) }; mark("owner") end
  local parent = opt_int(node, "parent.id")
  if parent then
    if parent ~= 0 and not store.db.tasks[parent] then fail("3002", "No access to parent task") end
    t.parent = { id = parent }; mark("parent")
  end
  local project = opt_int(node, "project.id")
  if project then
    local pr = store.db.projects[project]
    if project ~= 0 and not pr then fail("3003", "Project for the task does not exist") end
    t.project = { id = project, name = pr and pr.name or nil }; mark("project")
  end
  local client = opt_int(node, "client.id")
  if client then
    local c = store.db.contacts[client]
    if client ~= 0 and not c then fail("8002", "Contact does not exist") end
    t.counterparty = c and { id = "contact:" .. client, name = contact_name(c) } or json.null; mark("client")
  end
  if creating then
    local tpl = opt_int(node, "template")
    if tpl then
      if not store.db.templates[tpl] then fail("0015", "Invalid parameter value: task.template") end
      t.template = { id = tpl }; mark("template")
    end
    local b = param(node, "beginDateTime")
    if b then t.dateTime = util.timepoint(parse_datetime(b, "task.beginDateTime")); mark("beginDateTime") end
  end
  for name, key in pairs({ workers = "assignees", members = "participants", auditors = "auditors" }) do
    local n = xml.child(node, name)
    if n then
      local ids = {}
      for _, v in ipairs(xml.texts(n, "users", "id")) do ids[#ids + 1] = check_user(int(v, name .. ".users.id")) end
      t[key] = people_of(ids); mark(name)
    end
  end
  if apply_custom(t, node, "task") then mark("customData") end
  table.sort(changed)
  return changed
end

-- Fields task.update resets to defaults when they are left out (the documentation of task.update).
local RESETS = {
  description = function(t) t.description = "" end,
  importance = function(t) t.priority = "NotUrgent" end,
  workers = function(t) t.assignees = people_of({}) end,
  members = function(t) t.participants = people_of({}) end,
  auditors = function(t) t.auditors = people_of({}) end,
}

local H = {}

H["task.get"] = function(root)
  return task_xml(get_task(root), true)
end

H["task.getMulti"] = function(root)
  local ids, generals = xml.texts(root, "tasks", "id"), xml.texts(root, "tasks", "general")
  if #ids + #generals == 0 then fail("0009", "A required parameter is missing: tasks.id") end
  if #ids + #generals > 100 then fail("0021", "Requested number of objects exceeds the maximum for this function (100)") end
  local items = {}
  for _, v in ipairs(ids) do
    local t = store.db.tasks[int(v, "tasks.id")]
    if t then items[#items + 1] = task_xml(t, false) end
  end
  for _, v in ipairs(generals) do
    local t = store.db.tasks[int(v, "tasks.general") - GENERAL_OFFSET]
    if t then items[#items + 1] = task_xml(t, false) end
  end
  return E("tasks", items, { { "count", #items } })
end

local TASK_SORTS = {
  NUMBER_ASC = function(a, b) return a.id < b.id end,
  NUMBER_DESC = function(a, b) return a.id > b.id end,
  TASKTITLE_ASC = function(a, b)
    local x, y = str(a.name), str(b.name)
    if x ~= y then return x < y end
    return a.id < b.id
  end,
  TASKTITLE_DESC = function(a, b)
    local x, y = str(a.name), str(b.name)
    if x ~= y then return x > y end
    return a.id < b.id
  end,
  IMPORTANCE_ASC = function(a, b)
    if a.priority ~= b.priority then return a.priority ~= "Urgent" end
    return a.id < b.id
  end,
  IMPORTANCE_DESC = function(a, b)
    if a.priority ~= b.priority then return a.priority == "Urgent" end
    return a.id < b.id
  end,
}

H["task.getList"] = function(root)
  local target = param(root, "target") or "all"
  local project, parent = opt_int(root, "project.id"), opt_int(root, "parent.id")
  local status = param(root, "status")
  local status_id = status and status:match("^%d+$") and tonumber(status)
  local filter = param(root, "filter") or ""
  local me = "user:1"
  local source = target == "template" and store.db.templates or store.db.tasks
  local list = ordered(source, function(t)
    if target == "in" then
      local hit = false
      for _, id in ipairs(people_ids(t.assignees)) do if id == 1 then hit = true end end
      if not hit then return false end
    elseif target == "out" and idof(t.assigner) ~= me then
      return false
    end
    if project and idof(t.project) ~= project then return false end
    if parent and idof(t.parent) ~= parent then return false end
    if status_id and idof(t.status) ~= status_id then return false end
    if filter:find("ACTIVE", 1, true) then
      local s = store.db.statuses[idof(t.status)]
      if s and not s.isActive then return false end
    end
    return true
  end)
  local sort = param(root, "sort")
  if sort then
    local fn = TASK_SORTS[sort]
    if not fn then fail("0015", "Invalid parameter value: sort") end
    table.sort(list, fn)
  end
  return counted_list("tasks", list, root, function(t) return task_xml(t, false) end)
end

H["task.add"] = function(root, req)
  local node = xml.child(root, "task")
  if not node then fail("0009", "A required parameter is missing: task") end
  need(node, "title")
  local id = store.next_id("task")
  local t = store.task_record(id, "", { dateTime = util.timepoint(req.time), assignees = people_of({}),
    participants = people_of({}), auditors = people_of({}) })
  apply_task(t, node, true)
  t._cf_notes = nil -- history() keeps them for updates only
  store.db.tasks[id] = t
  scenarios.task_created(t, req.time)
  return E("task", { L("id", id), L("general", general(id)) })
end

H["task.update"] = function(root, req)
  local t = get_task(root)
  local node = xml.child(root, "task")
  local changed = apply_task(t, node, false)
  local reset = {}
  if M.config.update_resets then
    local given = {}
    for _, c in ipairs(changed) do given[c] = true end
    for _, name in ipairs({ "auditors", "description", "importance", "members", "workers" }) do
      if not given[name] then RESETS[name](t); reset[#reset + 1] = name end
    end
  end
  history(t, req, param(root, "silent") == "1", changed, reset)
  -- A field reset to its default changed too (a copy: history keeps `changed`).
  local all = {}
  for _, list in ipairs({ changed, reset }) do
    for _, name in ipairs(list) do all[#all + 1] = name end
  end
  scenarios.task_changed(t, all, req.time)
  return E("task", { L("id", t.id), L("general", general(t.id)) })
end

H["task.updateCustomData"] = function(root, req)
  local t = get_task(root)
  apply_custom(t, xml.child(root, "task"), "task")
  history(t, req, param(root, "silent") == "1", { "customData" })
  scenarios.task_changed(t, { "customData" }, req.time)
  return E("task", { L("id", t.id), L("general", general(t.id)) })
end

local function process_statuses(t)
  for _, p in ipairs(store.db.processes.task) do
    if p.id == (t.processId or 1) then return p.statuses end
  end
  return store.db.processes.task[1].statuses
end

H["task.changeStatus"] = function(root, req)
  local t = get_task(root)
  local id = int(need(root, "task.status"), "task.status")
  if not store.db.statuses[id] then fail("0015", "Invalid parameter value: task.status") end
  local allowed = false
  for _, s in ipairs(process_statuses(t)) do if s == id then allowed = true end end
  if not allowed then fail("0016", "Status " .. id .. " is not in the task's process") end
  local when = param(root, "task.dateTime")
  if when then parse_datetime(when, "task.dateTime") end
  t.status = store.status_ref(id)
  history(t, req, false, { "status" })
  scenarios.task_changed(t, { "status" }, req.time)
  return E("task", { L("id", t.id), L("general", general(t.id)) })
end

H["task.getPossibleStatusToChange"] = function(root)
  local t = get_task(root)
  local items = {}
  for _, sid in ipairs(process_statuses(t)) do
    if sid ~= idof(t.status) then
      local s = store.db.statuses[sid]
      items[#items + 1] = E("status", { L("value", sid), L("title", s and s.name or "") })
    end
  end
  return E("statusList", items, { { "totalCount", #items } })
end

---------------------------------------------------------------- actions (= REST comments)

local function action_xml(c)
  local p = { L("id", c.id), L("description", c.description) }
  local owner = ref_id(c.owner) or 1
  p[#p + 1] = E("owner", { L("id", owner), L("name", user_name(owner)) })
  p[#p + 1] = L("dateTime", dt(c.dateTime))
  p[#p + 1] = L("isHidden", c.isHidden and 1 or 0)
  p[#p + 1] = L("type", "ACTION")
  if c.task then
    local t = store.db.tasks[c.task.id]
    p[#p + 1] = E("task", { L("id", c.task.id), L("general", general(c.task.id)), L("title", t and t.name or "") })
  elseif c.contact then
    local ct = store.db.contacts[c.contact.id]
    p[#p + 1] = E("contact", { L("id", c.contact.id), L("general", general(c.contact.id)),
      L("name", ct and contact_name(ct) or "") })
  end
  if c._new_status then p[#p + 1] = L("taskNewStatus", c._new_status) end
  return E("action", p)
end

-- The target of action.add / action.getList: task {id|general} or contact {general|id}.
local function action_target(node)
  local tnode = xml.child(node, "task")
  if tnode then
    local t = find_task(tnode)
    if not t then fail("3001", "Task does not exist") end
    return "task", t
  end
  local cnode = xml.child(node, "contact")
  if cnode then
    local id = param(cnode, "id")
    id = id and int(id, "contact.id") or (int(need(cnode, "general"), "contact.general") - GENERAL_OFFSET)
    local c = store.db.contacts[id]
    if not c then fail("8002", "Contact does not exist") end
    return "contact", c
  end
  fail("0009", "A required parameter is missing: task.id or contact.general")
end

H["action.get"] = function(root)
  local id = int(need(root, "action.id"), "action.id")
  local c = store.db.comments[id]
  if not c or c.isDeleted then fail("4002", "Action does not exist") end
  return action_xml(c)
end

H["action.getList"] = function(root)
  local kind, rec = action_target(root)
  local list = ordered(store.db.comments, function(c)
    return not c.isDeleted and c[kind] ~= nil and c[kind].id == rec.id
  end)
  local sort = param(root, "sort") or "desc"
  if sort ~= "asc" and sort ~= "desc" then fail("0015", "Invalid parameter value: sort") end
  if sort == "desc" then
    local rev = {}
    for i = #list, 1, -1 do rev[#rev + 1] = list[i] end
    list = rev
  end
  return counted_list("actions", list, root, action_xml)
end

H["action.add"] = function(root, req)
  local node = xml.child(root, "action")
  if not node then fail("0009", "A required parameter is missing: action") end
  local desc = need(node, "description")
  local kind, rec = action_target(node)
  local owner = opt_int(node, "owner.id") or 1
  check_user(owner)
  local new_status = opt_int(node, "taskNewStatus")
  if new_status then
    if kind ~= "task" then fail("0016", "taskNewStatus needs a task") end
    if not store.db.statuses[new_status] then fail("4006", "Forbidden status") end
  end
  local id = store.next_id("comment")
  local c = store.comment_record(id, desc, kind, rec.id, owner, 0)
  c.owner = { id = "user:" .. owner, name = user_name(owner) }
  local when = param(node, "dateTime")
  c.dateTime = util.timepoint(when and parse_datetime(when, "action.dateTime") or req.time)
  c.isHidden = bool01(param(node, "isHidden")) or false
  if new_status then
    c._new_status = new_status
    rec.status = store.status_ref(new_status)
    history(rec, req, false, { "status" })
  end
  store.db.comments[id] = c
  rec.dateOfLastComment = c.dateTime
  if kind == "task" then
    scenarios.comment_added(rec, c, req.time)
    if new_status then scenarios.task_changed(rec, { "status" }, req.time) end
  end
  return E("action", { L("id", id) })
end

---------------------------------------------------------------- contacts

local function contact_xml(c)
  local p = {
    L("id", c.id), L("general", general(c.id)), L("name", c.name), L("midName", c.midname or ""),
    L("lastName", c.lastname or ""), L("isCompany", c.isCompany and 1 or 0), L("email", c.email or ""),
    L("description", c.description or ""),
  }
  local g = c.group or {}
  p[#p + 1] = E("group", { L("id", g.id or 0), L("name", g.name or "") })
  local phones = {}
  for _, ph in ipairs(c.phones or {}) do
    phones[#phones + 1] = E("phone", { L("number", ph.number), L("typeId", ph.type or 1),
      L("typeName", ph.type == 2 and "Work" or "Mobile") })
  end
  p[#p + 1] = E("phones", phones)
  p[#p + 1] = custom_xml(c, "contact")
  return E("contact", p)
end

local function find_contact(root)
  local node = xml.child(root, "contact")
  if not node then fail("0009", "A required parameter is missing: contact.id") end
  local id = param(node, "id")
  local c
  if id then
    c = store.db.contacts[int(id, "contact.id")]
  elseif param(node, "general") then
    c = store.db.contacts[int(param(node, "general"), "contact.general") - GENERAL_OFFSET]
  elseif param(node, "userid") then
    c = nil -- contacts that are users are not modelled
  else
    fail("0009", "A required parameter is missing: contact.id or contact.general")
  end
  if not c then fail("8002", "Contact does not exist") end
  return c, node
end

local function apply_contact(c, node)
  local changed = {}
  for xname, key in pairs({ name = "name", midName = "midname", lastName = "lastname", email = "email",
    description = "description" }) do
    local n = xml.child(node, xname)
    if n then c[key] = xml.text(n) or ""; changed[#changed + 1] = xname end
  end
  local gid = opt_int(node, "group.id")
  if gid then
    local gname
    for _, g in ipairs(store.db.contact_groups) do if g.id == gid then gname = g.name end end
    if not gname then fail("0015", "Invalid parameter value: contact.group.id") end
    c.group = { id = gid, name = gname }; changed[#changed + 1] = "group"
  end
  local phones = xml.child(node, "phones")
  if phones then
    local list = {}
    for _, ph in ipairs(phones.children) do
      if ph.name == "phone" then
        list[#list + 1] = { number = xml.text(ph, "number") or "", maskedNumber = xml.text(ph, "number") or "",
          type = tonumber(xml.text(ph, "typeId") or "1") or 1 }
      end
    end
    c.phones = json.array(list); changed[#changed + 1] = "phones"
  end
  if apply_custom(c, node, "contact") then changed[#changed + 1] = "customData" end
  table.sort(changed)
  return changed
end

H["contact.get"] = function(root)
  return contact_xml((find_contact(root)))
end

H["contact.getList"] = function(root)
  local target = param(root, "target") or "contact"
  local search = param(root, "search")
  search = search and lower(search)
  local list = ordered(store.db.contacts, function(c)
    if c.isDeleted then return false end
    if target == "company" and not c.isCompany then return false end
    if search then
      local hay = lower(contact_name(c) .. " " .. str(c.email))
      if not hay:find(search, 1, true) then return false end
    end
    return true
  end)
  return counted_list("contacts", list, root, contact_xml)
end

H["contact.add"] = function(root, req)
  local node = xml.child(root, "contact")
  if not node then fail("0009", "A required parameter is missing: contact") end
  need(node, "name")
  local id = store.next_id("contact")
  local c = store.contact_record(id, "", "", bool01(param(node, "isCompany")) or false, {
    createdDate = util.timepoint(req.time), dateOfLastUpdate = util.timepoint(req.time),
  })
  apply_contact(c, node)
  c._cf_notes = nil -- history() keeps them for updates only
  store.db.contacts[id] = c
  return E("contact", { L("id", id), L("general", general(id)) })
end

H["contact.updateCustomData"] = function(root, req)
  local c, node = find_contact(root)
  apply_custom(c, node, "contact")
  history(c, req, param(root, "silent") == "1", { "customData" })
  return E("contact", { L("id", c.id), L("general", general(c.id)) })
end

H["contact.update"] = function(root, req)
  local c, node = find_contact(root)
  local changed = apply_contact(c, node)
  history(c, req, param(root, "silent") == "1", changed)
  return E("contact", { L("id", c.id), L("general", general(c.id)) })
end

---------------------------------------------------------------- projects, users

local PROJECT_STATUS = { [1] = "DRAFT", [2] = "ACTIVE", [3] = "COMPLETED" }

local function project_xml(p)
  local owner = ref_id(p.owner) or 1
  local cid = ref_id(p.counterparty)
  local c = cid and store.db.contacts[cid]
  local g = p.group or {}
  return E("project", {
    L("id", p.id), L("general", general(p.id)), L("title", p.name), L("description", p.description or ""),
    L("status", PROJECT_STATUS[idof(p.status)] or "ACTIVE"),
    E("owner", { L("id", owner), L("name", user_name(owner)) }),
    E("client", { L("id", cid or 0), L("name", c and contact_name(c) or "") }),
    E("group", { L("id", g.id or 0), L("name", g.name or "") }),
    L("hidden", p.hiddenForEmployees and 1 or 0),
    custom_xml(p, "project"),
  })
end

local function find_project(root)
  local node = xml.child(root, "project")
  if not node then fail("0009", "A required parameter is missing: project.id") end
  local id = param(node, "id")
  local p
  if id then
    p = store.db.projects[int(id, "project.id")]
  else
    p = store.db.projects[int(need(node, "general"), "project.general") - GENERAL_OFFSET]
  end
  if not p then fail("2001", "Project does not exist") end
  return p, node
end

H["project.get"] = function(root)
  return project_xml((find_project(root)))
end

-- project.update: title, description and customData (the other fields of
-- project.add are not emulated).
H["project.update"] = function(root, req)
  local p, node = find_project(root)
  local changed = {}
  local title = param(node, "title")
  if title then p.name = title; changed[#changed + 1] = "title" end
  local desc = xml.child(node, "description")
  if desc then p.description = xml.text(desc) or ""; changed[#changed + 1] = "description" end
  if apply_custom(p, node, "project") then changed[#changed + 1] = "customData" end
  history(p, req, param(root, "silent") == "1", changed)
  return E("project", { L("id", p.id), L("general", general(p.id)) })
end

H["project.getList"] = function(root)
  local client = opt_int(root, "client.id")
  local list = ordered(store.db.projects, function(p)
    if p.isDeleted then return false end
    if client and ref_id(p.counterparty) ~= client then return false end
    return true
  end)
  return counted_list("projects", list, root, project_xml)
end

local function user_xml(u)
  local groups = {}
  for _, g in ipairs(u.groups or {}) do
    groups[#groups + 1] = E("userGroup", { L("id", g.id), L("name", g.name) })
  end
  return E("user", {
    L("id", u.id), L("name", u.name), L("midName", u.midname or ""), L("lastName", u.lastname or ""),
    L("login", u.login or ""), L("email", u.email or ""), L("role", u.role or ""),
    L("status", u.status == "Active" and "ACTIVE" or "INACTIVE"), E("userGroups", groups),
  })
end

H["user.get"] = function(root, req)
  local id = opt_int(root, "user.id") or opt_int(root, "user.general") or req.xml_user or 1
  local u = store.db.users[id]
  if not u then fail("6004", "User does not exist") end
  return user_xml(u)
end

H["user.getList"] = function(root)
  local status = param(root, "status")
  local list = ordered(store.db.users, function(u)
    if u.isDeleted then return false end
    if status == "ACTIVE" and u.status ~= "Active" then return false end
    return true
  end)
  return counted_list("users", list, root, user_xml)
end

---------------------------------------------------------------- files

local function find_file(root)
  local id = param(root, "file.id") or param(root, "file.uniqueId")
  if not id then fail("0009", "A required parameter is missing: file.id") end
  local f = id:match("^%d+$") and store.db.files[tonumber(id)]
  if not f then fail("9002", "File does not exist") end
  return f
end

H["file.get"] = function(root, req)
  local f = find_file(root)
  local p = { L("id", f.id), L("uniqueId", f.id), L("name", f.name), L("size", #f.content),
    L("versionCount", 1), L("isExternal", f._external and 1 or 0) }
  if param(root, "returnDownloadLinks") == "1" then
    p[#p + 1] = L("downloadLink", require("sandbox.rest").download_url(f, req.time))
  end
  return E("file", p)
end

-- Raw answers (not XML): 200 with the bytes, or 302 for external files.
H["file.download"] = function(root, req)
  local f = find_file(root)
  if f._external then
    return { status = 302, headers = { Location = require("sandbox.rest").download_url(f, req.time) } }
  end
  return { status = 200, body = f.content, headers = {
    ["Content-Type"] = f.content_type or "application/octet-stream",
    ["Content-Disposition"] = "attachment; filename*=UTF-8''" .. ngx.escape_uri(f.name),
  } }
end

---------------------------------------------------------------- handbooks (= REST directories)

local function get_handbook(root)
  local id = int(need(root, "handbook.id"), "handbook.id")
  local d = store.db.directories[id]
  if not d then fail("0101", "Requested object does not exist: handbook " .. id) end
  return d, store.db.directory_entries[id] or {}
end

local function record_xml(d, e)
  local cv = {}
  for _, f in ipairs(d.fields or {}) do
    local v = e._cf and e._cf[f.id]
    if v ~= nil then
      cv[#cv + 1] = E("customValue", { E("field", { L("id", f.id), L("name", f.name) }),
        L("value", cf_text(f, v)) })
    end
  end
  return E("record", {
    L("key", e.key), L("parentKey", e.parentKey or 0), L("isGroup", e.isGroup and 1 or 0),
    L("name", e.name or ""), L("archived", e.archived and 1 or 0), E("customData", cv),
  })
end

H["handbook.getRecords"] = function(root)
  local d, entries = get_handbook(root)
  local parent = opt_int(root, "parentKey") or 0
  local list = ordered(entries, function(e) return (e.parentKey or 0) == parent end)
  local current, size = paging(root)
  local items = {}
  if current >= 1 then
    for _, e in ipairs(slice(list, current, size)) do items[#items + 1] = record_xml(d, e) end
  end
  -- No count attributes: clients stop on a short page.
  return E("records", items)
end

-- The handbook and its record named by handbook.id and key.
local function get_record(root)
  local d, entries = get_handbook(root)
  local key = int(need(root, "key"), "key")
  local e = entries[key]
  if not e then fail("0101", "Requested object does not exist: record " .. key) end
  return d, e
end

H["handbook.getRecord"] = function(root)
  return record_xml(get_record(root))
end

H["handbook.getRecordMulti"] = function(root)
  local d, entries = get_handbook(root)
  local keys = xml.texts(root, "records", "key")
  if #keys > 100 then fail("0021", "Requested number of objects exceeds the maximum for this function (100)") end
  local items = {}
  for _, k in ipairs(keys) do
    local e = entries[int(k, "records.key")]
    if e then items[#items + 1] = record_xml(d, e) end
  end
  return E("records", items)
end

-- The fields of a record write (handbook.addRecord, handbook.updateRecord):
-- name, parentKey, isGroup, archived and customData, whose values follow
-- the REST rules of sandbox.planfix_fields.
local function apply_record(d, e, root)
  local name = xml.child(root, "name")
  if name then e.name = xml.text(name) or "" end
  local parent = opt_int(root, "parentKey")
  if parent then e.parentKey = parent end
  local group, archived = param(root, "isGroup"), param(root, "archived")
  if group then e.isGroup = bool01(group) end
  if archived then e.archived = bool01(archived) end
  for _, cv in ipairs((xml.child(root, "customData") or { children = {} }).children) do
    if cv.name == "customValue" then
      local id = int(xml.text(cv, "id") or "", "customValue.id")
      local def
      for _, f in ipairs(d.fields or {}) do if f.id == id then def = f end end
      if not def then fail("0015", "Invalid parameter value: custom field " .. id) end
      local given = cf_rules.from_xml_text(def, xml.text(cv, "value"))
      local what, value = cf_rules.write(store.db, "directory", e, def, given)
      if what == "failed" then fail("0015", "Invalid parameter value: custom field " .. id .. " value") end
      if what == "stored" then e._cf[id] = value end
    end
  end
  -- A record added with custom values only is named by its first field.
  local first = d.fields and d.fields[1] and e._cf[d.fields[1].id]
  if (e.name == nil or e.name == "") and type(first) == "string" then e.name = first end
end

H["handbook.addRecord"] = function(root)
  local d, entries = get_handbook(root)
  store.db.directory_entries[d.id] = entries
  local key = 1
  for k in pairs(entries) do if k >= key then key = k + 1 end end
  local e = { key = key, parentKey = 0, name = "", archived = false, isGroup = false, _cf = {} }
  apply_record(d, e, root)
  entries[key] = e
  return L("key", key)
end

H["handbook.updateRecord"] = function(root)
  local d, e = get_record(root)
  apply_record(d, e, root)
  return L("key", e.key)
end

H["handbook.getList"] = function(root)
  local group = opt_int(root, "group.id")
  local list = ordered(store.db.directories, function(d) return not group or d.group.id == group end)
  return counted_list("handbooks", list, root, function(d)
    return E("handbook", { L("id", d.id), L("name", d.name),
      E("group", { L("id", d.group.id), L("name", d.group.name) }) })
  end)
end

-- A handbook's fields: id, name, type (the REST custom field types) and
-- isDisplayed (the first, as analitic.getHandbook marks it).
H["handbook.getStructure"] = function(root)
  local d = get_handbook(root)
  local fields = {}
  for i, f in ipairs(d.fields or {}) do
    fields[#fields + 1] = E("field", { L("id", f.id), L("name", f.name), L("type", f.type),
      L("isDisplayed", i == 1 and 1 or 0) })
  end
  return E("handbook", { L("id", d.id), L("name", d.name), E("fields", fields) })
end

-- Which handbook fields analitic.getHandbook marks isDisplayed="1": the first.
H["analitic.getHandbook"] = function(root)
  local d, entries = get_handbook(root)
  local items = {}
  for _, e in ipairs(ordered(entries)) do
    local p = { L("key", e.key), L("parentKey", e.parentKey or 0), L("isGroup", e.isGroup and 1 or 0) }
    for i, f in ipairs(d.fields or {}) do
      p[#p + 1] = E("value", nil, { { "value", value_text(e._cf and e._cf[f.id]) }, { "name", f.name },
        { "isDisplayed", i == 1 and 1 or 0 } })
    end
    items[#items + 1] = E("record", p)
  end
  return E("records", items)
end

---------------------------------------------------------------- auth.login

H["auth.login"] = function(root, req)
  local login, password = xml.text(root, "login"), xml.text(root, "password")
  if not login then fail("0009", "A required parameter is missing: login") end
  local raw = xml.child(root, "password")
  password = raw and raw.text or nil
  local u = LOGINS[login]
  if not u or u.password ~= password then
    M.login_failures = M.login_failures + 1
    fail("1001", "Wrong login or password")
  end
  local sid
  repeat
    sid = ngx.md5(table.concat({ login, req.time, math.random(), ngx.worker.pid() }, ":"))
  until not M.sessions[sid]
  M.sessions[sid] = { created = req.time, last = req.time, user = u.user }
  M.logins = M.logins + 1
  return L("sid", sid)
end

M.IMPLEMENTED = {}
for name in pairs(H) do M.IMPLEMENTED[#M.IMPLEMENTED + 1] = name end
table.sort(M.IMPLEMENTED)

---------------------------------------------------------------- pipeline

-- Parses the body once (main.lua needs the method name before the fault
-- decision and the log needs the tree). Sets req.xml_root / xml_error /
-- xml_method.
function M.prepare(req)
  local root, err = xml.parse(req.body)
  if root and root.name ~= "request" then root, err = nil, "root element must be <request>" end
  req.xml_root, req.xml_error = root, err
  req.xml_method = root and xml.attr(root, "method") or nil
end

-- Values for the log entry: xml_method and the request as a simple table.
function M.log_fields(req)
  return {
    xml_method = req.xml_method or json.null,
    xml = req.xml_root and xml.simple(req.xml_root) or json.null,
  }
end

local function basic_auth(req)
  local h = req.headers["authorization"]
  if type(h) == "table" then h = h[1] end
  if type(h) ~= "string" then return nil end
  local b64 = h:match("^%s*[Bb][Aa][Ss][Ii][Cc]%s+(%S+)%s*$")
  local plain = b64 and ngx.decode_base64(b64)
  if not plain then return nil end
  local user, pass = plain:match("^([^:]*):(.*)$")
  if not user then return plain, "" end
  return user, pass
end

local function session_alive(s, now)
  local from = M.config.session_sliding and s.last or s.created
  return now - from < M.config.session_ttl
end

-- Everything from the account check to the handler; raises XERR.
local function run(req)
  local root, method = req.xml_root, req.xml_method
  local account = xml.text(root, "account")
  if not account or account == "" or account ~= M.config.account then
    fail("0004", "Unknown account")
  end
  local key, password = basic_auth(req)
  if key ~= M.config.api_key then fail("0001", "Incorrect API key") end
  if xml.child(root, "signature") then
    local given = xml.text(root, "signature")
    local want = xml.signature(root, M.config.private_key)
    if given ~= want then fail("0006", "Incorrect signature") end
  end
  local scope = "all"
  if method == "auth.login" then
    req.xml_mode = (password == "" or password == "X") and "login" or "token"
  elseif password ~= "" and password ~= "X" then
    req.xml_mode = "token"
    local t = M.tokens[password]
    if not t then fail("0012", "The provided token does not exist") end
    req.xml_token, req.xml_user, scope = password, 1, t.scope
  else
    req.xml_mode = "login"
    local sid = xml.text(root, "sid")
    if not sid or sid == "" then fail("0012", "Authentication error: no session (sid not sent)") end
    local s = M.sessions[sid]
    ngx.update_time()
    local now = ngx.now()
    if s and not session_alive(s, now) then
      M.sessions[sid] = nil
      s = nil
    end
    if not s then fail("0005", "Session key invalid (session expired)") end
    s.last = now
    req.xml_sid, req.xml_user = sid, s.user
  end

  local rstatus, _, rheaders = ratelimit.check()
  if rstatus == 429 then
    error(setmetatable({ http = 429, headers = rheaders, message = "Too many requests" }, XERR), 0)
  elseif rstatus then
    fail("0007", "Resource usage limit exceeded (daily request limit)")
  end

  if scope == "readonly" and is_write(method) then
    fail("0020", "Calling this function is forbidden for this token")
  end
  local h = H[method]
  if not h then fail("0018", "Function not implemented in the sandbox: " .. method) end
  return h(root, req)
end

local function merge(a, b)
  a = a or {}
  for k, v in pairs(b or {}) do a[k] = v end
  return a
end

-- Answers one request. Returns status, body (string), headers.
function M.handle(req)
  local function xml_headers(extra)
    return merge(merge({ ["Content-Type"] = xml.CONTENT_TYPE }, extra), ratelimit.headers())
  end
  if req.path ~= "/" then
    return 404, xml.error_document(nil, "Not found: the XML API is POST /xml/"), xml_headers()
  end
  if not xml.available then
    return 500, xml.error_document(nil, xml.MISSING), xml_headers()
  end
  if req.method ~= "POST" then
    return 405, xml.error_document(nil, "Method not allowed: use POST"), xml_headers({ Allow = "POST" })
  end
  local function error_answer(code, message)
    local status = M.config.error_status
    -- file.download tells its result by the HTTP status (the documentation of file.download).
    if req.xml_method == "file.download" then status = code == "9002" and 404 or 403 end
    return status, xml.error_document(code, message or xml.message(code)), xml_headers()
  end
  if not req.xml_root then
    return error_answer("0003", "XML parse error: " .. tostring(req.xml_error))
  end
  local method = req.xml_method
  if not method or not KNOWN[method] then
    return error_answer("0008", "Unknown function name" .. (method and (": " .. method) or ""))
  end
  local ok, res = pcall(run, req)
  if not ok then
    if getmetatable(res) == XERR then
      if res.http then
        return res.http, xml.error_document(nil, res.message), xml_headers(res.headers)
      end
      return error_answer(res.code, res.message)
    end
    ngx.log(ngx.ERR, "xml handler error on ", method, ": ", tostring(res))
    return 500, xml.error_document(nil, "Sandbox internal error"), xml_headers()
  end
  if type(res) == "table" then -- a raw answer (file.download)
    return res.status, res.body, merge(res.headers, ratelimit.headers())
  end
  return 200, xml.ok_document(res), xml_headers()
end

return M
