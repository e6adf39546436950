-- In-memory data of the emulated Planfix account: deterministic seed,
-- id counters and bulk generators for paging tests.
--
-- All state lives in M.db, which reset() replaces wholesale. Other modules
-- must read `store.db` on every use and never keep a reference across
-- requests (a reset would leave them with the old world).
--
-- Conventions inside records: keys starting with "_" are internal (never
-- returned by the API): _cf = {[customFieldId] = value}, _files = {fileId...},
-- _history = {...} (updates applied, incl. the silent flag).
local json = require("sandbox.json")
local util = require("sandbox.util")
local planado_data = require("sandbox.planado_data")
local planfix_fields = require("sandbox.planfix_fields")

local M = {}
local unpack = table.unpack or unpack -- LuaJIT vs 5.4

-- Seed clock: 2024-01-01T10:00:00Z. Fixed so answers are reproducible.
M.SEED_TIME = 1704103200
local DAY = 86400

local function tp(offset_days, hour)
  return util.timepoint(M.SEED_TIME + (offset_days or 0) * DAY + (hour or 0) * 3600)
end

local function person(kind, id, name)
  return { id = kind .. ":" .. id, name = name }
end

local function people(list)
  return { users = json.array(list or {}), groups = json.array() }
end

-- Custom field definitions by object kind. The ids are the "known set": an
-- update naming any other id gets a per-field failure.
local function seed_customfields()
  return {
    task = {
      { id = 101, name = "Line field", type = 0, objectType = 0, groupId = 1 },
      { id = 102, name = "Number field", type = 1, objectType = 0, groupId = 1 },
      { id = 103, name = "Date field", type = 3, objectType = 0, groupId = 1 },
      { id = 104, name = "Checkbox field", type = 7, objectType = 0, groupId = 1 },
      { id = 105, name = "List field", type = 8, objectType = 0, groupId = 1,
        enumValues = { "Low", "Medium", "High" } },
    },
    contact = {
      { id = 111, name = "Contact line", type = 0, objectType = 1, groupId = 2 },
      { id = 112, name = "Contact number", type = 1, objectType = 1, groupId = 2 },
    },
    project = {
      { id = 121, name = "Project line", type = 0, objectType = 3, groupId = 3 },
    },
    user = {
      { id = 131, name = "Employee line", type = 0, objectType = 6, groupId = 4 },
    },
    main = {
      { id = 141, name = "Main line", type = 0, objectType = 5 },
    },
  }
end

local STATUS_DEFS = {
  { id = 1, name = "New", color = "#4573b1", ru = "Новая" },
  { id = 2, name = "In progress", color = "#f0ad4e", ru = "В работе" },
  { id = 3, name = "Completed", color = "#5cb85c", ru = "Выполненная", isActive = false },
  { id = 4, name = "Postponed", color = "#999999", ru = "Отложенная" },
  { id = 5, name = "Cancelled", color = "#d9534f", ru = "Отменённая", isActive = false },
  { id = 6, name = "Waiting for client", color = "#5bc0de", ru = "Ожидает клиента" },
}

local function seed_statuses()
  local out = {}
  for _, s in ipairs(STATUS_DEFS) do
    out[s.id] = {
      id = s.id, name = s.name, color = s.color,
      isActive = s.isActive ~= false, hasDeadline = s.isActive ~= false,
      isAppliedIndividually = false,
      texts = { { lang = "Ru", name = s.ru }, { lang = "En", name = s.name } },
    }
  end
  return out
end

local USERS = {
  { 1, "Robot", "API", "Robot", "robot", 1 },
  { 2, "Ivan", "Petrov", "User", "ivan.petrov", 2 },
  { 3, "Anna", "Smirnova", "Admin", "anna.smirnova", 1 },
}
local USER_GROUPS = { [1] = "Managers", [2] = "Developers" }

local function user_record(id, name, lastname, role, login, group)
  return {
    id = id, name = name, midname = "", lastname = lastname, gender = "NotDefined",
    isDeleted = false, role = role, login = login, email = login .. "@sandbox.test",
    status = "Active", groups = { { id = group, name = USER_GROUPS[group] or "Group" } },
    position = { id = 1, name = "Manager" }, languageCode = "en", timezone = "UTC",
    birthDate = tp(-10000), _cf = {},
  }
end

function M.contact_record(id, name, lastname, is_company, extra)
  local c = {
    id = id, name = name, midname = "", lastname = lastname or "", gender = "NotDefined",
    description = "", email = "", isCompany = is_company or false, isDeleted = false,
    group = { id = 1, name = "Clients" }, template = { id = 1 },
    createdDate = tp(-30), dateOfLastUpdate = tp(-1),
    phones = json.array(), companies = json.array(), contacts = json.array(), _cf = {}, _files = {},
  }
  return util.merge(c, extra)
end

function M.project_record(id, name, status, extra)
  local p = {
    id = id, name = name, description = "", status = { id = status },
    owner = person("user", 1, "Robot API"), group = { id = 1, name = "Development" },
    template = { id = 0 }, startDate = tp(-60), hasEndDate = false,
    hiddenForEmployees = false, hiddenForClients = false, overdue = false,
    isCloseToDeadline = false, isDeleted = false,
    assignees = people(), participants = people(), auditors = people(), clientManagers = people(),
    _cf = {}, _files = {},
  }
  return util.merge(p, extra)
end

-- A complete task record; `extra` overrides the defaults.
function M.task_record(id, name, extra)
  local t = {
    id = id, name = name, description = "", priority = "NotUrgent",
    status = { id = 1, name = "New" }, processId = 1, resultChecking = false, type = "Task",
    assigner = person("user", 1, "Robot API"), parent = { id = 0 }, template = { id = 0 },
    object = { id = 0 }, project = { id = 0 }, counterparty = json.null,
    dateTime = tp(0), startDateTime = json.null, endDateTime = json.null,
    hasStartDate = false, hasEndDate = false, hasStartTime = false, hasEndTime = false,
    delayedTillDate = json.null, actualCompletionDate = json.null, dateOfLastUpdate = tp(0),
    dateOfLastComment = json.null, duration = 0, durationUnit = "Hour", durationType = "CalendarDays",
    overdue = false, closeToDeadLine = false, notAcceptedInTime = false, inFavorites = false,
    isSummary = false, isSequential = false,
    assignees = people(), participants = people(), auditors = people(), projectAuditors = people(),
    recurrence = json.null, isDeleted = false, additionalDescriptionData = "",
    sourceObjectId = "", sourceDataVersion = "", dataTags = json.array(),
    _cf = {}, _files = {}, _history = {},
  }
  return util.merge(t, extra)
end

local function status_ref(id)
  local s = STATUS_DEFS[id]
  return { id = id, name = s and s.name or ("Status " .. id) }
end
M.status_ref = status_ref

function M.comment_record(id, text, target_kind, target_id, owner_id, day, extra)
  local c = {
    id = id, dateTime = tp(day or 0, 1), type = "Comment", fromType = "Planfix",
    description = text, additionalDescriptionData = "",
    owner = person("user", owner_id or 1, owner_id == 2 and "Ivan Petrov" or "Robot API"),
    isDeleted = false, isPinned = false, isHidden = false, isNotRead = false,
    recipients = people(), reminders = json.array(), dataTags = json.array(),
    _files = {},
  }
  c[target_kind] = { id = target_id }
  return util.merge(c, extra)
end

local function seed()
  local db = {
    customfields = seed_customfields(),
    statuses = seed_statuses(),
    processes = {
      task = {
        { id = 1, name = "Default process", statuses = { 1, 2, 3, 4, 5 } },
        { id = 2, name = "Support process", statuses = { 1, 2, 6, 3 } },
      },
      contact = { { id = 1, name = "Default contact process", statuses = {} } },
    },
    user_groups = { { id = 1, name = "Managers" }, { id = 2, name = "Developers" } },
    contact_groups = { { id = 1, name = "Clients" }, { id = 2, name = "Suppliers" } },
    project_groups = { { id = 1, name = "Development" }, { id = 2, name = "Sales" } },
    directory_groups = { { id = 1, name = "Catalog" }, { id = 2, name = "Geography" } },
    positions = { { id = 1, name = "Manager" }, { id = 2, name = "Developer" } },
    workspaces = { { id = 1, name = "Main workspace" } },
    task_filters = {
      { id = ":all", name = "All" }, { id = ":in", name = "Incoming" },
      { id = ":out", name = "Outgoing" }, { id = ":audit", name = "Audited" },
      { id = "40578", name = "My custom filter", owner = person("user", 1, "Robot API") },
    },
    contact_filters = {
      { id = ":contact", name = "Contacts" }, { id = ":company", name = "Companies" },
      { id = "4115", name = "My custom filter", owner = person("user", 1, "Robot API") },
    },
    users = {}, contacts = {}, projects = {}, tasks = {}, templates = {},
    comments = {}, checklists = {}, datatags = {}, datatag_entries = {},
    directories = {}, directory_entries = {}, files = {}, downloads = {},
  }

  for _, u in ipairs(USERS) do db.users[u[1]] = user_record(unpack(u)) end

  db.contacts[11] = M.contact_record(11, "Acme Ltd", "", true,
    { email = "office@acme.test", group = { id = 2, name = "Suppliers" }, _cf = { [111] = "ACME" } })
  db.contacts[12] = M.contact_record(12, "Ivan", "Ivanov", false,
    { email = "ivan@example.test", companies = { { id = 11, name = "Acme Ltd" } },
      phones = { { number = "+15550100", maskedNumber = "+1 555-0100", type = 1 } },
      _cf = { [111] = "VIP", [112] = 7 } })
  db.contacts[13] = M.contact_record(13, "Maria", "Garcia", false, { email = "maria@example.test" })
  -- Cyrillic, "&" and a code with a leading zero, for the XML API.
  db.contacts[14] = M.contact_record(14, "Рога & Копыта", "", true,
    { email = "office@roga.test", description = "Поставщик <основной>", _cf = { [111] = "007" } })

  db.projects[1] = M.project_record(1, "Website redesign", 2, { description = "New public site", _cf = { [121] = "web" } })
  db.projects[2] = M.project_record(2, "Mobile app", 2, { counterparty = person("contact", 11, "Acme Ltd") })
  db.projects[3] = M.project_record(3, "Archive", 1, { description = "Completed work" })

  local robot, ivan, anna = person("user", 1, "Robot API"), person("user", 2, "Ivan Petrov"),
    person("user", 3, "Anna Smirnova")
  db.tasks[1] = M.task_record(1, "Prepare quarterly report", {
    description = "Collect the figures and write the summary.", status = status_ref(2),
    assignees = people({ ivan }), auditors = people({ anna }), project = { id = 1, name = "Website redesign" },
    counterparty = person("contact", 11, "Acme Ltd"), startDateTime = tp(0), endDateTime = tp(14),
    hasStartDate = true, hasEndDate = true, duration = 6, dateOfLastComment = tp(2),
    _cf = { [101] = "Q1", [102] = 42 }, _files = { 1 },
  })
  db.tasks[2] = M.task_record(2, "Fix login bug", {
    priority = "Urgent", status = status_ref(1), assignees = people({ anna }),
    project = { id = 1, name = "Website redesign" }, dateTime = tp(1), _cf = { [104] = true },
  })
  db.tasks[3] = M.task_record(3, "Call the supplier", {
    status = status_ref(3), project = { id = 2, name = "Mobile app" }, assigner = ivan,
    counterparty = person("contact", 13, "Maria Garcia"), dateTime = tp(2),
    actualCompletionDate = tp(3),
  })
  db.tasks[4] = M.task_record(4, "Plan team offsite", {
    status = status_ref(4), processId = 2, dateTime = tp(3), assignees = people({ robot }),
  })
  db.tasks[5] = M.task_record(5, "Update website texts", {
    status = status_ref(1), project = { id = 1, name = "Website redesign" }, parent = { id = 1 },
    dateTime = tp(4), _cf = { [105] = "High" },
  })

  -- Cyrillic text and XML special characters; task 6 has two workers,
  -- so with tasks 1 (one) and 3 (none) lists of 0, 1 and 2 items occur.
  db.tasks[6] = M.task_record(6, "Счёт №42 для ООО «Ромашка»", {
    description = "Клиент просит скидку 5% & бесплатную доставку <срочно>", priority = "Urgent",
    status = status_ref(6), processId = 2, project = { id = 2, name = "Mobile app" },
    assignees = people({ ivan, anna }), counterparty = person("contact", 14, "Рога & Копыта"),
    dateTime = tp(5), _cf = { [101] = "0042" }, _files = { 3 },
  })
  db.tasks[7] = M.task_record(7, "Check A < B & C > D", { status = status_ref(1), dateTime = tp(6) })

  db.templates[100] = M.task_record(100, "Template: bug report", { type = "Template" })
  db.templates[101] = M.task_record(101, "Template: monthly report", { type = "Template" })

  db.comments[1] = M.comment_record(1, "Started on the figures.", "task", 1, 1, 0)
  db.comments[2] = M.comment_record(2, "Logged 1.5 h of analysis.", "task", 1, 2, 1)
  db.comments[3] = M.comment_record(3, "Draft is ready for review.", "task", 1, 2, 2)
  db.comments[4] = M.comment_record(4, "Reproduced on staging.", "task", 2, 1, 1)
  db.comments[5] = M.comment_record(5, "Prefers e-mail.", "contact", 12, 1, 1)

  db.checklists[1] = { id = 1, name = "Collect figures", isDone = true, parent = { id = 0 },
    dateTime = tp(0), assignees = people({ ivan }), _task = 1 }
  db.checklists[2] = { id = 2, name = "Write summary", isDone = false, parent = { id = 0 },
    dateTime = tp(1), assignees = people(), _task = 1 }

  db.datatags[1] = { id = 1, name = "Work log", group = { id = 1, name = "Accounting" },
    fields = { { id = 201, name = "Hours", type = 1, objectType = 4 },
               { id = 202, name = "Note", type = 0, objectType = 4 } } }
  db.datatags[2] = { id = 2, name = "Expenses", group = { id = 1, name = "Accounting" },
    fields = { { id = 211, name = "Amount", type = 1, objectType = 4 },
               { id = 212, name = "Item", type = 0, objectType = 4 } } }
  local function dt_entry(key, tag, target_kind, target_id, comment, cf)
    local e = { key = key, commentId = comment, _tag = tag, _cf = cf }
    e[target_kind] = { id = target_id }
    db.datatag_entries[key] = e
  end
  dt_entry(1, 1, "task", 1, 2, { [201] = 1.5, [202] = "Analysis" })
  dt_entry(2, 1, "task", 1, 3, { [201] = 3, [202] = "Writing" })
  dt_entry(3, 1, "task", 2, 4, { [201] = 0.5, [202] = "Review" })
  dt_entry(4, 2, "contact", 12, 5, { [211] = 120.5, [212] = "Taxi" })

  db.directories[1] = { id = 1, name = "Products", group = { id = 1, name = "Catalog" },
    sourceObjectId = "", sourceDataVersion = "",
    fields = { { id = 301, name = "Name", type = 0, objectType = 2 },
               { id = 302, name = "Price", type = 1, objectType = 2 } } }
  db.directories[2] = { id = 2, name = "Regions", group = { id = 2, name = "Geography" },
    sourceObjectId = "", sourceDataVersion = "",
    fields = { { id = 311, name = "Name", type = 0, objectType = 2 } } }
  -- Entry keys are per directory.
  db.directory_entries[1] = {
    [1] = { key = 1, parentKey = 0, name = "Laptop", archived = false, isGroup = false, _cf = { [301] = "Laptop", [302] = 1200 } },
    [2] = { key = 2, parentKey = 0, name = "Monitor", archived = false, isGroup = false, _cf = { [301] = "Monitor", [302] = 300 } },
    [3] = { key = 3, parentKey = 0, name = "Keyboard", archived = false, isGroup = false, _cf = { [301] = "Keyboard", [302] = 50 } },
  }
  db.directory_entries[2] = {
    [1] = { key = 1, parentKey = 0, name = "North", archived = false, isGroup = false, _cf = { [311] = "North" } },
    [2] = { key = 2, parentKey = 0, name = "South", archived = false, isGroup = false, _cf = { [311] = "South" } },
  }

  db.files[1] = { id = 1, name = "readme.txt", content = "Hello from the Planfix sandbox.\n",
    content_type = "text/plain", _targets = { { type = "task", id = 1 } } }
  local png = { "\137PNG\r\n\26\n" }
  for i = 1, 2000 do png[#png + 1] = string.char(i % 256) end
  db.files[2] = { id = 2, name = "photo.png", content = table.concat(png),
    content_type = "image/png", _targets = { { type = "contact", id = 12 } } }
  db.contacts[12]._files = { 2 }
  -- Stored outside Planfix: the XML file.download answers 302 for it.
  db.files[3] = { id = 3, name = "Договор №7.pdf", content = "%PDF-1.4\n% sandbox external file\n%%EOF\n",
    content_type = "application/pdf", _external = true, _targets = { { type = "task", id = 6 } } }

  -- Reports: one report with one saved result of two chunks.
  db.reports = {
    [1] = { id = 1, name = "Tasks by status", link = "",
      fields = { { id = 1, name = "Status", num = 1, formula = "", hidden = false },
                 { id = 2, name = "Count", num = 2, formula = "", hidden = false } } },
  }
  db.report_saves = {
    [1] = { id = 1, reportId = 1, name = "Tasks by status (seed)", chunksCount = 2, dateTime = tp(5),
      _chunks = {
        { { type = "Header", depth = 0, items = { { text = "Status", link = "", hidden = false },
                                                  { text = "Count", link = "", hidden = false } } },
          { type = "Normal", depth = 0, items = { { text = "New", link = "", hidden = false },
                                                  { text = 2, link = "", hidden = false } } } },
        { { type = "Normal", depth = 0, items = { { text = "In progress", link = "", hidden = false },
                                                  { text = 1, link = "", hidden = false } } } },
      } },
  }
  db.report_requests = {} -- requestId -> { report, polls, save }
  db.telegram_bots = { [12345] = { webhookManagedExternally = false, secret = false } }

  db.next_id = {
    report_save = 100,
    task = 1000, contact = 100, project = 100, user = 100, comment = 100, checklist = 100,
    datatag_entry = 100, directory_entry = 100, file = 100, position = 100, customfield = 1000,
    template = 200, directory = 100,
  }
  -- Custom fields of every type, templates with attached fields, the
  -- "Lead sources" directory (sandbox.planfix_fields).
  planfix_fields.seed(db)
  -- The Planado API's data (planado_* keys).
  planado_data.seed(db)
  return db
end

M.db = seed()

function M.reset()
  M.db = seed()
end

function M.next_id(kind)
  local id = M.db.next_id[kind]
  M.db.next_id[kind] = id + 1
  return id
end

-- Replaces one collection with n generated records (ids 1..n) for paging
-- tests. Returns nil, err for an unknown kind.
local generators = {
  tasks = function(n)
    local t = {}
    for i = 1, n do
      -- Status cycles New, In progress, Completed so status filters have data.
      t[i] = M.task_record(i, "Task " .. i, {
        status = status_ref((i - 1) % 3 + 1), dateTime = util.timepoint(M.SEED_TIME + i * 60),
      })
    end
    M.db.tasks = t
    M.db.next_id.task = math.max(n + 1, 1000)
  end,
  contacts = function(n)
    local t = {}
    for i = 1, n do t[i] = M.contact_record(i, "Contact " .. i, "", false) end
    M.db.contacts = t
    M.db.next_id.contact = math.max(n + 1, 100)
  end,
  projects = function(n)
    local t = {}
    for i = 1, n do t[i] = M.project_record(i, "Project " .. i, 2) end
    M.db.projects = t
    M.db.next_id.project = math.max(n + 1, 100)
  end,
  users = function(n)
    local t = {}
    for i = 1, n do t[i] = user_record(i, "User " .. i, "", "User", "user" .. i, 2) end
    M.db.users = t
    M.db.next_id.user = math.max(n + 1, 100)
  end,
  comments = function(n)
    -- All comments are replaced by n comments of task 1.
    local t = {}
    for i = 1, n do
      t[i] = M.comment_record(i, "Comment " .. i, "task", 1, 1, 0)
      t[i].dateTime = util.timepoint(M.SEED_TIME + i * 60)
    end
    M.db.comments = t
    M.db.next_id.comment = math.max(n + 1, 100)
  end,
}
-- The Planado API (sandbox.planado_data): jobs, clients and sites.
generators.planado_jobs = function(n) planado_data.generate_jobs(M.db, n) end
generators.planado_clients = function(n) planado_data.generate_clients(M.db, n) end
generators.planado_sites = function(n) planado_data.generate_sites(M.db, n) end
-- The XML API's actions are the REST comments.
generators.actions = generators.comments
-- Records of handbook 1 (= directory 1, "Products").
generators.handbook_records = function(n)
  local t = {}
  for i = 1, n do
    t[i] = { key = i, parentKey = 0, name = "Record " .. i, archived = false, isGroup = false,
      _cf = { [301] = "Record " .. i, [302] = i * 10 } }
  end
  M.db.directory_entries[1] = t
end

function M.generate(kind, n)
  local gen = generators[kind]
  if not gen then return nil, "unknown collection '" .. tostring(kind) .. "'" end
  n = util.to_int(n)
  if not n or n < 0 or n > 100000 then return nil, kind .. ": count must be an integer 0..100000" end
  gen(n)
  return true
end

-- Custom field definition by object kind and id (nil when unknown).
function M.customfield(kind, id)
  return planfix_fields.find(M.db, kind, id)
end

-- Files attached to an object, as API FileResponse objects (size in KB).
function M.file_summary(f)
  return { id = f.id, name = f.name, size = math.ceil(#f.content / 1024) }
end

return M
