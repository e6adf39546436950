-- planfix_rest/custom_fields.lua: custom fields by name on the REST client (issue 20).
--   rest.fields:list("task") / rest.fields:get("task", "Region") / rest.fields:invalidate()
--   rest.tasks:get(42, { fields = { "name", "Order number" } })  -> task.fields["Order number"]
--   rest.tasks:set_fields(42, { ["Order number"] = "ORD-7", Region = "North" })
--   rest.tasks:verify_fields(42, { Region = "North" })            -> true | nil, err
-- (the same on contacts, projects and users). Definitions come from planfix_fields.definitions,
-- loaded with GET /customfield/{entity} and the entity's templates list; values go through
-- planfix_fields.types. Planfix answers success to writes it silently drops (its REST API
-- documentation's gotchas: a field not on the object's template, a period given as a duration),
-- so set_fields checks before sending and reads the written fields back after.
local M = {}

local config_error = require "planapi.config_error"
local options = require "planapi.options"
local Definitions = require "planapi.planfix_fields.definitions"
local types = require "planapi.planfix_fields.types"


-- The resources with custom fields: their entity and the operations that read, write and list
-- templates of one object (users have no templates).
M.ENTITIES = {
  tasks = { entity = "task", get = "get-task-by-id", key = "task", update = "post-task-by-id",
    templates = "get-task-list-templates", list = "get-task-list" },
  contacts = { entity = "contact", get = "get-contact-by-id", key = "contact", update = "post-contact-by-id",
    templates = "get-contact-list-templates", list = "get-contact-list" },
  projects = { entity = "project", get = "get-project-by-id", key = "project", update = "post-project-by-id",
    templates = "get-project-list-templates", list = "get-project-list" },
  users = { entity = "user", get = "get-user-id", key = "user", update = "post-user-id", list = "get-user-list" },
}
local BY_GET_OP, BY_LIST_OP = {}, {}
for _, ent in pairs(M.ENTITIES) do BY_GET_OP[ent.get], BY_LIST_OP[ent.list] = ent, ent end

local function set_of(text)
  local s = {}
  for name in text:gmatch "%S+" do s[name] = true end
  return s
end

-- The system field names of each entity: the properties of the OpenAPI file's TaskResponse,
-- ContactResponse, ProjectResponse and UserResponse (spec/36 compares them). A name in
-- `fields` that is none of these is a custom field's.
M.SYSTEM = {
  task = set_of [[actualCompletionDate additionalDescriptionData assignees assigner auditors closeToDeadLine
    counterparty customFieldData dataTags dateOfLastUpdate dateTime delayedTillDate description duration
    durationType durationUnit endDateTime files hasEndDate hasEndTime hasStartDate hasStartTime id inFavorites
    isDeleted isSequential isSummary name notAcceptedInTime object overdue parent participants priority
    processId project projectAuditors recurrence resultChecking sourceDataVersion sourceObjectId startDateTime
    status template type]],
  contact = set_of [[addedBy additionalEmailAddresses address birthDate communicationLanguageCode companies
    contacts createdDate customFieldData dataTags dateOfLastUpdate description email facebook files gender
    group id instagram isCompany isDeleted languageCode lastname midname name phones position processId site
    skype sourceDataVersion sourceObjectId supervisors telegram telegramId template timezone viberId]],
  project = set_of [[assignees auditors clientManagers counterparty customFieldData description endDate group
    hasEndDate hiddenForClients hiddenForEmployees id isCloseToDeadline isDeleted name overdue owner parent
    participants sourceDataVersion sourceObjectId startDate status template]],
  user = set_of [[avatarUrl birthDate communicationLanguageCode customFieldData email gender groups id isDeleted
    languageCode lastname login midname name personalManagers phones position role secondaryEmails
    sourceDataVersion sourceObjectId status telegram telegramId temporaryReplacement timezone workspace]],
}

-- What a definition read asks for (the fields GET /customfield/{entity} documents).
local DEFINITION_ATTRIBUTES = "id,name,type,objectType,groupId,directoryId,directoryFields,enumValues"

-- ------------------------------------------------------------ definitions

--- The client option `definitions = { cache = <scope> | <cache object>, ttl = 3600 }`, checked:
-- a scope ("memory", "file:/dir", "shm:NAME", "redis://host:port/db") becomes a planapi.cache
-- told of the client's token, which it then refuses to write. Returns { cache =, ttl = } or nil.
function M.check_option(v, level, token)
  if v == nil then return nil end
  options.check("planfix_rest definitions", v, level + 1, { cache = "string|table", ttl = "number" })
  if v.ttl ~= nil and not (v.ttl > 0 and v.ttl < math.huge) then
    config_error("definitions option 'ttl' must be a number of seconds above 0", level + 1)
  end
  local c = v.cache
  if type(c) == "string" then
    -- planapi.cache is loaded only for a client that names a scope
    c = require("planapi.cache").new { scope = c, ttl = v.ttl, namespace = "planfix_fields", secrets = { token } }
  end
  return { cache = c, ttl = v.ttl }
end

local function load_fields(rest)
  return function(entity)
    local result, err = rest:call("get-customfield-" .. entity, { fields = DEFINITION_ATTRIBUTES })
    if not result then return nil, err end
    return result.customfields or {}
  end
end

-- A template's attached fields are the custom fields its read answers with when every field's
-- id is asked for (a field not on a template is not shown for it).
local function load_templates(rest, defs)
  return function(entity)
    local op = M.ENTITIES[entity .. "s"].templates
    if op == nil then return {} end
    local fields, err = defs:fields(entity)
    if not fields then return nil, err end
    local wanted = { "id", "name" }
    for _, def in ipairs(fields) do wanted[#wanted + 1] = ("%d"):format(def.id) end
    return rest:all(op, { fields = table.concat(wanted, ",") })
  end
end

--- The client's definitions (made on first use): rest.fields, tasks:get and set_fields share them.
function M.definitions(rest)
  local defs = rawget(rest, "field_definitions")
  if defs then return defs end
  local opt = rawget(rest, "definitions_option") or {}
  local lazy = {}
  defs = Definitions.new {
    load_fields = load_fields(rest),
    load_templates = function(entity) return load_templates(rest, lazy.defs)(entity) end,
    cache = opt.cache,
    -- the account's API host: no secret, and one account's names apart from another's
    namespace = "planfix_rest:" .. (rest.base_url:match "^%a+://([^/]+)" or rest.base_url):gsub("^.*@", ""),
    ttl = opt.ttl,
  }
  lazy.defs = defs
  rawset(rest, "field_definitions", defs)
  rawset(rest, "object_templates", {})
  return defs
end

-- ------------------------------------------------------------ names of values

-- The names of a directory's entries: every page read once, kept with the definitions.
local function directory_entries(rest, directory_id)
  return M.definitions(rest):fetch(("directory/%d/entries"):format(directory_id), function()
    local entries, err = rest:all("post-list-directory-entries", { id = directory_id, fields = "key,name" })
    if not entries then return nil, err end
    local out = {}
    for i, e in ipairs(entries) do out[i] = { id = tonumber(e.key), name = tostring(e.name) } end
    return out
  end)
end

--- A resolver of names where a value takes an id (planfix_fields/types.lua's ctx.resolve):
-- directory entries by name, across all pages of the field's directory; any other kind is a
-- config error asking for an id or the script's own resolver.
function M.resolver(rest)
  return function(kind, name, def)
    if kind ~= "directory" or def.directory_id == nil then
      config_error(("custom field '%s' (%s) takes an id here: pass opts.resolve to look %s up by name")
        :format(def.name, def.type_name or types.name(def.type), types.quoted(name)), 0)
    end
    local entries, err = directory_entries(rest, def.directory_id)
    if not entries then return nil, err end
    return Definitions.lookup(entries, name, "entry", ("directory %d of '%s'"):format(def.directory_id,
      def.name)).id
  end
end

-- A directory's or a data tag's own fields come with it (GET /directory/{id}, GET /datatag/{id}
-- with `fields`).
local OWNER_READ = { directory = { "get-directory-by-id", "directory" }, datatag = { "get-datatag-id", "dataTag" } }

--- The fields of directory or data tag `id` ("directory", "datatag") as definitions, through the
-- definitions cache ("<kind>_fields/<id>") | nil, err.
function M.owner_fields(rest, kind, id)
  local op = OWNER_READ[kind]
  return M.definitions(rest):named(kind .. "_fields", id, function()
    local result, err = rest:call(op[1], { id = id, fields = "id,name,fields" })
    if not result then return nil, err end
    local out = {}
    for i, raw in ipairs(type(result[op[2]]) == "table" and result[op[2]].fields or {}) do out[i] = raw end
    return out
  end, function(raw) return Definitions.field_def(raw, kind) end)
end

-- ------------------------------------------------------------ reads by name

local function split(fields)
  if type(fields) == "table" then return fields end
  local out = {}
  for item in tostring(fields):gmatch "[^,]+" do out[#out + 1] = item:gsub("^%s+", ""):gsub("%s+$", "") end
  return out
end

--- Rewrite a get's `fields` (a list, or a comma-separated string) into the ids Planfix takes:
-- system names stay, custom fields by name or id become ids. Returns the wire string and what to
-- decode into obj.fields ({ key = as asked, id, def }), or the string unchanged and nil when it
-- names no custom field by name and is a string (a raw call stays raw).
function M.wire_fields(rest, entity, fields)
  local items = split(fields)
  local system, out, wanted, by_name = M.SYSTEM[entity], {}, {}, false
  for _, item in ipairs(items) do
    if type(item) == "string" and system[item] then
      out[#out + 1] = item
    else
      local def
      if type(item) == "number" or (type(item) == "string" and item:match "^%d+$") then
        def = { id = tonumber(item) }
      else
        by_name = true
        local err
        def, err = M.definitions(rest):field(entity, item)
        if not def then return nil, err end
      end
      out[#out + 1] = ("%d"):format(def.id)
      wanted[#wanted + 1] = { key = item, id = def.id, def = def }
    end
  end
  if type(fields) == "string" and not by_name then return fields, nil end
  return table.concat(out, ","), wanted
end

--- obj.fields[key] = the decoded value of each field asked for (nil when Planfix sent none).
function M.decode_into(obj, wanted)
  if type(obj) ~= "table" or wanted == nil then return obj end
  local map, out = Definitions.by_field_id(obj.customFieldData), {}
  for _, w in ipairs(wanted) do
    local item = map[w.id]
    if item then
      local def = item.field.type ~= nil and item.field or w.def
      out[w.key] = types.decode(def, item.value)
    end
  end
  obj.fields = out
  return obj
end

--- rest:call of any operation, where a get of a task, contact, project or user may name custom
-- fields in `fields` (resources.lua's get and the command line): the names become ids and the
-- values asked for are decoded into result.<entity>.fields.
function M.call(rest, op_id, params, opts)
  local ent = BY_GET_OP[op_id]
  if not (ent and params and params.fields ~= nil) then return rest:call(op_id, params, opts) end
  local wire, wanted = M.wire_fields(rest, ent.entity, params.fields)
  if wire == nil then return nil, wanted end -- wanted: why the definitions could not be read
  local p = {}
  for k, v in pairs(params) do p[k] = v end
  p.fields = wire
  local result, meta = rest:call(op_id, p, opts)
  if result ~= nil then M.decode_into(result[ent.key], wanted) end
  return result, meta
end

--- The entity ("task") of a get that takes custom field names in `fields`, or nil.
function M.entity_of_get(op_id)
  return BY_GET_OP[op_id] and BY_GET_OP[op_id].entity
end

--- rest:pager of any paged operation, where a list of tasks, contacts, projects or users may
-- name custom fields in `fields` (a list or a string): each item gets its `fields` decoded.
-- nil, err when the definitions cannot be read.
function M.pager(rest, op_id, params, opts)
  local ent = BY_LIST_OP[op_id]
  if not (ent and params and params.fields ~= nil) then return rest:pager(op_id, params, opts) end
  local wire, wanted = M.wire_fields(rest, ent.entity, params.fields)
  if wire == nil then return nil, wanted end
  local p = {}
  for k, v in pairs(params) do p[k] = v end
  p.fields = wire
  local pager = rest:pager(op_id, p, opts)
  if wanted then
    local fetch = pager.fetch
    pager.fetch = function(cursor)
      local items, next_cursor = fetch(cursor)
      for _, item in ipairs(items or {}) do M.decode_into(item, wanted) end
      return items, next_cursor
    end
  end
  return pager
end

return M
