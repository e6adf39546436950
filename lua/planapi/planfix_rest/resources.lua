-- planfix_rest/resources.lua: sugar for what scripts use most.
--   rest.tasks:get(42, { fields = "id,name" })     -> task, meta
--   rest.tasks:create{ name = "Call back" }         -> id, meta
--   rest.tasks:update(42, { name = "x", silent = true }) -> result (queued, failures)
--   for t in rest.tasks:each{ fields = "id" } do ... end
-- Every method takes the operation's path parameters first (in path order),
-- then the parameters table, then the call options of rest:call.
local base = require("planapi.client_base")
local scaffold = require("planapi.scaffold")

-- name = { kind, operationId, key to unwrap }
-- kinds: get (result[key]), create (result.id), call (the result),
-- each / pages / all / pager (paging, see planfix_rest/init.lua)

-- each / pages / all / pager over one paged list, beside the defs given.
local function listed(list_op, defs)
  for _, kind in ipairs { "each", "pages", "all", "pager" } do defs[kind] = { kind, list_op } end
  return defs
end

local DEFS = {
  tasks = listed("get-task-list", {
    get = { "get", "get-task-by-id", "task" },
    create = { "create", "post-task" },
    update = { "call", "post-task-by-id" },
    comments = { "each", "get-task-comments" },
    add_comment = { "create", "post-task-add-comment" },
    update_comment = { "call", "post-task-update-comment" },
    filters = { "get", "post-task-filters", "filters" },
    checklist = { "each", "get-task-checklist" },
    add_checklist_item = { "create", "post-checklist-item" },
    update_checklist_item = { "call", "post-checklist-item-by-id" },
    files = { "get", "get-task-files", "files" },
    templates = { "each", "get-task-list-templates" },
    recurring = { "each", "get-task-list-recurring" },
    add_datatag_entry = { "call", "post-task-add-data-tag-entry-new-comment" },
  }),
  contacts = listed("get-contact-list", {
    get = { "get", "get-contact-by-id", "contact" },
    create = { "create", "post-contact" },
    update = { "call", "post-contact-by-id" },
    comments = { "each", "get-contact-comments" },
    add_comment = { "create", "post-contact-add-comment" },
    update_comment = { "call", "post-contact-update-comment" },
    filters = { "get", "post-contact-filters", "filters" },
    groups = { "get", "get-contact-list-groups", "groups" },
    templates = { "each", "get-contact-list-templates" },
    files = { "get", "get-contact-files", "files" },
  }),
  projects = listed("get-project-list", {
    get = { "get", "get-project-by-id", "project" },
    create = { "create", "post-project" },
    update = { "call", "post-project-by-id" },
    groups = { "get", "get-project-groups", "groups" },
    templates = { "each", "get-project-list-templates" },
    files = { "each", "get-project-files" },
  }),
  users = listed("get-user-list", {
    get = { "get", "get-user-id", "user" },
    create = { "create", "post-user" },
    update = { "call", "post-user-id" },
    groups = { "get", "get-user-groups", "groups" },
    positions = { "get", "get-user-positions", "positions" },
  }),
  comments = listed("get-comment-list", {
    get = { "get", "get-comment-id", "comment" },
    delete = { "call", "delete-comment-id" },
  }),
  datatags = listed("get-data-tags", {
    get = { "get", "get-datatag-id", "dataTag" },
    entries = { "each", "post-list-data-tag-entries" },
    entry = { "get", "get-datatag-entry-key", "entry" },
    update_entry = { "call", "post-update-data-tag-entry" },
    delete_entry = { "call", "delete-datatag-entry-key" },
  }),
  directories = listed("get-list-directories", {
    get = { "get", "get-directory-by-id", "directory" },
    groups = { "get", "get-directories-groups", "groups" },
    entries = { "each", "post-list-directory-entries" },
    add_entry = { "call", "post-add-directory-entry" },
    entry = { "get", "get-directory-id-entry-key", "entry" },
    update_entry = { "call", "post-update-directory-entry" },
    delete_entry = { "call", "delete-directory-entry-key" },
  }),
  -- rest.fields: the account's custom-field definitions (planfix_rest/custom_fields.lua)
  fields = {},
  -- rest.names: statuses, users, projects... by name (planfix_rest/names.lua)
  names = {},
  files = {
    get = { "get", "get-file-id", "file" },
    update = { "call", "post-file-update" },
    delete = { "call", "delete-file-id" },
  },
}

local config_error = require("planapi.config_error")
local custom = require("planapi.planfix_rest.custom_fields")
local field_writes = require("planapi.planfix_rest.field_writes")
local names = require("planapi.planfix_rest.names")
local directory_lookup = require("planapi.planfix_rest.directory_lookup")

-- each / pages / all / pager, where a list's `fields` may name custom fields: the pager of
-- custom_fields.lua (a failure to read the definitions raises in each and pages, as a failed
-- page does, and is nil, err from all and pager).
local function walk(rest, kind, op_id, params, opts)
  local pager, err = custom.pager(rest, op_id, params, opts)
  if pager == nil then
    if kind == "each" or kind == "pages" then error(err, 0) end
    return nil, err
  end
  if kind == "pager" then return pager end
  if kind ~= "all" then return pager[kind](pager) end
  local items
  items, err = pager:all()
  if items == nil then return nil, err end
  return items, pager
end

-- Bind one DEFS entry into a method: (path params..., params, opts).
local function method(rest, def)
  local kind, op_id, key = def[1], def[2], def[3]
  local op = rest.operation(op_id)
  local n = #op.path_params
  return function(_, ...)
    local args = { ... }
    local params = {}
    for k, v in pairs(args[n + 1] or {}) do params[k] = v end
    for i = 1, n do
      if args[i] == nil then config_error(("%s needs %s first"):format(op_id, op.path_params[i]), 2) end
      params[op.path_params[i]] = args[i]
    end
    local opts = args[n + 2]
    if kind == "each" or kind == "pages" or kind == "all" or kind == "pager" then
      return walk(rest, kind, op_id, params, opts)
    end
    -- a get's `fields` may name custom fields (planfix_rest/custom_fields.lua)
    local result, meta = custom.call(rest, op_id, params, opts)
    if result == nil then return nil, meta end
    if kind == "get" then
      local v = result[key]
      if v == nil then -- tolerate the spec's own key mix-ups
        for k, x in pairs(result) do
          if k ~= "result" and type(x) == "table" then v = x break end
        end
      end
      return base.expect(v, meta, key, op_id)
    elseif kind == "create" then
      return base.expect(result.id, meta, "id", op_id, true)
    end
    return result, meta
  end
end

-- Files need more than one operation per method.
local FILES = {
  --- rest.files:upload({ path = "a.pdf" } | { data =, name = }, { target = "task" }) -> id
  upload = function(rest)
    return function(_, file, opts)
      local call_opts = scaffold.copy(opts, { "target" })
      local result, meta = rest:call("post-file-upload", { file = file, targetType = opts and opts.target or "task" },
        call_opts)
      if result == nil then return nil, meta end
      return base.expect(result.id, meta, "id", "post-file-upload", true)
    end
  end,
  --- rest.files:download(id) -> bytes
  download = function(rest)
    return function(_, id, opts) return rest:download(id, opts) end
  end,
  --- rest.files:attach(file_id, "task" | "contact" | "project", target_id)
  attach = function(rest)
    return function(_, file_id, target_type, target_id, opts)
      local op_id = "attach-file-to-" .. tostring(target_type)
      if rest.operation(op_id) == nil then
        config_error("files:attach target must be task, contact or project", 2)
      end
      -- The file's `id` goes in the path, the target's in the query (query_id).
      return rest:call(op_id, { id = file_id, query_id = target_id }, opts)
    end
  end,
}

-- Custom fields by name on the resources that have them (planfix_rest/field_writes.lua).
local function field_methods(name)
  local ent = custom.ENTITIES[name]
  return {
    set_fields = function(rest)
      return function(_, id, values, opts) return field_writes.set_fields(rest, ent, id, values, opts) end
    end,
    verify_fields = function(rest)
      return function(_, id, values, opts) return field_writes.verify_fields(rest, ent, id, values, opts) end
    end,
  }
end

-- Lua functions (rest, ...) as a resource's methods.
local function bound(fns, names_list)
  local out = {}
  for name, as in pairs(names_list) do
    out[name] = function(rest)
      return function(_, ...) return fns[as](rest, ...) end
    end
  end
  return out
end

local function merged(a, b)
  for k, v in pairs(b) do a[k] = v end
  return a
end

-- rest.names (planfix_rest/names.lua); rest.users:find_by_name and rest.projects:find_by_name
local NAMES = {}
for name in pairs(names.METHODS) do NAMES[name] = name end
-- rest.directories: entries by their fields' values (planfix_rest/directory_lookup.lua)
local DIRECTORIES = bound(directory_lookup, { find = "find", find_all = "find_all", fields = "fields",
  invalidate = "invalidate" })

-- rest.fields: the definitions by entity ("task", "contact", "project", "user").
local FIELDS = {
  --- rest.fields:list("task") -> list of definitions | nil, err
  list = function(rest)
    return function(_, entity) return custom.definitions(rest):fields(entity) end
  end,
  --- rest.fields:get("task", "Region" | 101) -> definition | nil, err
  get = function(rest)
    return function(_, entity, name_or_id) return custom.definitions(rest):field(entity, name_or_id) end
  end,
  --- rest.fields:templates("task") -> list of templates { id, name, field_ids } | nil, err
  templates = function(rest)
    return function(_, entity) return custom.definitions(rest):templates(entity) end
  end,
  --- rest.fields:invalidate(entity?): read definitions and templates again on next use
  invalidate = function(rest)
    return function(_, entity)
      custom.definitions(rest):invalidate(entity)
      rawset(rest, "object_templates", {})
    end
  end,
}

--- bind(rest, name) -> the resource object `name` of a client, or nil;
-- names() -> the resource names and their methods (for documentation and specs).
return scaffold.resources(DEFS, method, { files = FILES, fields = FIELDS, tasks = field_methods "tasks",
  contacts = field_methods "contacts",
  projects = merged(field_methods "projects", bound(names.METHODS, { find_by_name = "project" })),
  users = merged(field_methods "users", bound(names.METHODS, { find_by_name = "user" })),
  names = bound(names.METHODS, NAMES), directories = DIRECTORIES })
