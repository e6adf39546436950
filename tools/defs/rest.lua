-- defs/rest.lua: the Planfix REST part of the editor definitions and its
-- page, docs/api/planfix-rest.md, from planfix_rest/ops.lua (through the
-- client's own rest.operation) and the resource sugar's table.
local R = {}

local P = "planapi.planfix_rest"
local META = "planapi.Meta|planapi.Error"
local ENTITY = '"task"|"contact"|"project"|"user"'

-- The signatures of the resource methods made otherwise than from one
-- operation (planfix_rest/resources.lua's extras).
local EXTRAS = {
  files = {
    upload = { params = { { "file", "{ path: string }|{ data: string, name: string }" },
      { "opts?", "{ target: \"task\"|\"contact\"|\"project\" }|" .. P .. ".CallOptions" } },
      returns = { { "integer?", "id" }, { META, "meta" } }, doc = "Uploads a file (post-file-upload): its id." },
    download = { params = { { "file_id", "integer" }, { "opts?", P .. ".CallOptions" } },
      returns = { { "string?", "bytes" }, { META, "meta" } }, doc = "The file's bytes (get-file-id-download)." },
    attach = { params = { { "file_id", "integer" }, { "target_type", "\"task\"|\"contact\"|\"project\"" },
      { "target_id", "integer" }, { "opts?", P .. ".CallOptions" } },
      returns = { { "table?", "result" }, { META, "meta" } }, doc = "attach-file-to-task, -contact or -project." },
  },
  fields = {
    list = { params = { { "entity", ENTITY } },
      returns = { { "table[]?", "definitions" }, { "planapi.Error?", "err" } },
      doc = "The account's custom fields of an entity: { id, name, type, type_name, options, ... }." },
    get = { params = { { "entity", ENTITY }, { "name_or_id", "string|integer" } },
      returns = { { "table?", "definition" }, { "planapi.Error?", "err" } },
      doc = "One custom field by name (exact, then ignoring case) or id; ambiguous or unknown: a config error." },
    templates = { params = { { "entity", ENTITY } },
      returns = { { "table[]?", "templates" }, { "planapi.Error?", "err" } },
      doc = "The entity's templates: { id, name, field_ids = { [id] = true } }." },
    invalidate = { params = { { "entity?", ENTITY } }, doc = "Read definitions and templates again on next use." },
  },
}
-- rest.names and rest.directories' lookups by name (planfix_rest/names.lua, directory_lookup.lua)
local NAMED = { { "table?", "item" }, { "planapi.Error?", "err" } }
local NAME = { "name_or_id", "string|integer" }
local function name_lookup(doc) return { params = { NAME }, returns = NAMED, doc = doc } end
EXTRAS.names = {
  status = { params = { NAME, { "opts?", "{ process: string|integer? }" } }, returns = NAMED,
    doc = "A task status { id, name, process } by name, in one process or in every one." },
  process = name_lookup "A task process { id, name } by name.",
  user = name_lookup "A user { id, name, login } by full name (\"Ivan Petrov\") or login.",
  user_group = name_lookup "A user group { id, name } by name.",
  project = name_lookup "A project { id, name } by name.",
  directory = name_lookup "A directory { id, name } by name.",
  template = { params = { { "entity", ENTITY }, NAME }, returns = NAMED,
    doc = "A template { id, name, field_ids } of an entity by name." },
  invalidate = { params = { { "kind?", '"processes"|"statuses"|"users"|"user_groups"|"projects"|"directories"' } },
    doc = "Read one kind of names (or all) again on next use." },
}
local DIRECTORY = { "directory", "string|integer" }
local MATCH = { "match", "table<string|integer, any>|string" }
local DIRECTORY_EXTRAS = {
  find = { params = { DIRECTORY, MATCH, { "opts?", "{ create_missing: boolean?, resolve: function? }" } },
    returns = { { "table?", "entry" }, { "planapi.Error?", "err" } },
    doc = "The one entry whose fields hold the values (every page read, cached); create_missing creates it." },
  find_all = { params = { DIRECTORY, MATCH }, returns = { { "table[]?", "entries" }, { "planapi.Error?", "err" } },
    doc = "Every entry whose fields hold the values: { key, name, fields = { [name] = value } }." },
  fields = { params = { DIRECTORY }, returns = { { "table[]?", "definitions" }, { "planapi.Error?", "err" } },
    doc = "The directory's field definitions." },
  invalidate = { params = { { "directory?", "string|integer" } },
    doc = "Read the directory's fields and entries (or every directory's) again on next use." },
}
EXTRAS.directories = DIRECTORY_EXTRAS

-- set_fields and verify_fields on the resources with custom fields (planfix_rest/field_writes.lua)
for _, rname in ipairs { "tasks", "contacts", "projects", "users" } do
  EXTRAS[rname] = {
    set_fields = { params = { { "id", "integer|string" }, { "values", "table<string|integer, any>" },
      { "opts?", "{ read_back: boolean?, check_template: boolean?, silent: boolean?, resolve: function?, "
        .. "utc_offset: number?, timeout: number?, dry_run: boolean|string? }" } },
      returns = { { "table?", "result" }, { META, "meta" } },
      doc = "Custom field values by name, checked before sending and read back after (result.verified)." },
    verify_fields = { params = { { "id", "integer|string" }, { "values", "table<string|integer, any>" },
      { "opts?", "{ resolve: function?, utc_offset: number?, timeout: number? }" } },
      returns = { { "true?", "ok" }, { "planapi.Error?", "err" } },
      doc = "Whether the values are what the object holds (the read-back alone)." },
  }
end
for rname, kind in pairs { users = "user", projects = "project" } do
  EXTRAS[rname].find_by_name = name_lookup(("A %s { id, name } by name (rest.names:%s)."):format(kind, kind))
end

-- What each kind of sugar method returns (planfix_rest/resources.lua), beside the paging ones.
local RETURNS = {
  get = { { "table?", "object" }, { META, "meta" } }, create = { { "integer?", "id" }, { META, "meta" } },
  call = { { "table?", "result" }, { META, "meta" } },
}

-- The operations in order, each with its parameters (cli/help's list).
local function operations(ctx)
  local out = {}
  for _, id in ipairs(ctx.rest.operations()) do
    local op = ctx.rest.operation(id)
    out[#out + 1] = { id = id, op = op, params = ctx.help.rest_params(op) }
  end
  return out
end

-- A parameter's doc: where it goes and its limits ("in path, minimum 1").
local function param_doc(ctx, p)
  local where = "in " .. p.location:gsub("body %(multipart%)", "multipart body")
    .. (p.wire and (", sent as " .. p.wire) or "")
  local limits = ctx.help.limits_text(p.limits):gsub("^%((.*)%)$", "%1")
  return where .. (limits ~= "" and (", " .. limits) or "")
end

-- The params class of an operation; skip: path parameters left out (the
-- sugar takes them first) under the class name given.
local function params_class(ctx, w, o, name, skip)
  local fields = {}
  -- the sugar's get of a task, contact, project or user takes custom field names in `fields`
  local by_name = skip and require("planapi.planfix_rest.custom_fields").entity_of_get(o.id)
  for _, p in ipairs(o.params) do
    if not (skip and p.location == "path") then
      local t = (by_name and p.name == "fields") and "string|(string|integer)[]" or ctx.M.rest_type(p)
      fields[#fields + 1] = { p.name .. (p.required and "" or "?"), t, param_doc(ctx, p) }
    end
  end
  -- the lists that take filters take them by name too (planfix_rest/filters.lua)
  if require("planapi.planfix_rest.filters").LISTS[o.id] then
    fields[#fields + 1] = { "where?", "table", "filters by name: { { name, operator, value }, name = value }, "
      .. "turned into `filters` (README: Filters by name)" }
  end
  local doc = ("%s: %s (`%s %s`)"):format(o.id, o.op.summary or "", o.op.method, o.op.path)
  if o.op.at_least_one then doc = doc .. "; at least one of " .. table.concat(o.op.at_least_one, ", ") end
  w:class { name = name, doc = doc, fields = fields }
end

-- Whether an operation's params are all optional.
local function all_optional(o)
  for _, p in ipairs(o.params) do
    if p.required then return false end
  end
  return true
end

-- The operations as entries of the overloads (gen_defs' add_overloads).
local function overload_entries(ctx, ops)
  local out = {}
  for i, o in ipairs(ops) do
    out[i] = { name = o.id, params = P .. ".params." .. ctx.M.ident(o.id), optional = all_optional(o),
      paged = o.op.paged ~= nil }
  end
  return out
end

-- The sugar method's function: path parameters first, then the params and the call options.
local function sugar_func(ctx, name, def, by_id)
  local kind, o = def[1], by_id[def[2]]
  local params = {}
  for _, p in ipairs(o.params) do
    if p.location == "path" then params[#params + 1] = { p.name, ctx.M.rest_type(p) } end
  end
  local args = #params > 0 and (P .. ".args." .. ctx.M.ident(o.id)) or (P .. ".params." .. ctx.M.ident(o.id))
  params[#params + 1] = { "params?", args }
  local list = kind == "each" or kind == "pages" or kind == "all" or kind == "pager"
  params[#params + 1] = { "opts?", list and (P .. ".PagerOptions") or (P .. ".CallOptions") }
  return { name = name, method = true, params = params, returns = RETURNS[kind] or ctx.M.LIST_RETURNS[kind],
    doc = ("%s (%s)"):format(o.op.summary or o.id, o.id) }
end

local function resource_classes(ctx, w, by_id)
  local resources = require "planapi.planfix_rest.resources"
  local names, fields = ctx.M.sorted_keys(resources.defs), {}
  for _, rname in ipairs(names) do
    local defs, funcs = resources.defs[rname], {}
    for _, m in ipairs(ctx.M.sorted_keys(defs)) do funcs[#funcs + 1] = sugar_func(ctx, m, defs[m], by_id) end
    fields[#fields + 1] = ctx.M.resource_class(w, P, "rest", rname, funcs, resources.extras[rname], EXTRAS[rname])
  end
  return fields
end

-- The args classes: the sugar's params without the path parameters.
local function args_classes(ctx, w, by_id)
  local resources = require "planapi.planfix_rest.resources"
  local seen = {}
  for _, rname in ipairs(ctx.M.sorted_keys(resources.defs)) do
    for _, def in pairs(resources.defs[rname]) do seen[def[2]] = true end
  end
  for _, id in ipairs(ctx.M.sorted_keys(seen)) do
    local o = by_id[id]
    if #o.op.path_params > 0 then params_class(ctx, w, o, P .. ".args." .. ctx.M.ident(id), true) end
  end
end

local function client_funcs(ctx, ops)
  local op_t, call_t = P .. ".Operation", P .. ".CallOptions"
  return ctx.M.add_overloads(ctx.M.client_funcs({
    { name = "new", params = { { "opts", P .. ".Options" } }, returns = { { P .. ".Client" } } },
    { name = "operations", returns = { { "string[]" } }, doc = "The operationIds, sorted." },
    { name = "operation", params = { { "op", op_t } }, returns = { { "table?" } },
      doc = "One operation: method, path, parameters with their types and limits, paging." },
    { name = "call", method = true, params = { { "op", op_t }, { "params?", "table" }, { "opts?", call_t } },
      returns = { { "table?", "result" }, { META, "meta" } },
      doc = "Any operation by its operationId; the parameters routed and checked as the spec says." },
    { name = "prepare", method = true, params = { { "op", op_t }, { "params?", "table" }, { "opts?", call_t } },
      returns = { { "planapi.Request" } }, doc = "The request, pure: nothing is sent." },
    { name = "download", method = true, params = { { "file_id", "integer" }, { "opts?", call_t } },
      returns = { { "string?", "bytes" }, { META, "meta" } } },
  }, { "op", op_t }, P .. ".PagerOptions"), P .. ".Client", "op", overload_entries(ctx, ops), call_t,
    P .. ".PagerOptions")
end

--- types/library/planapi/planfix_rest.lua
function R.render(ctx)
  local M, w = ctx.M, ctx.M.writer()
  w:add("---@meta", M.HEADER, "")
  local ops, by_id, ids = operations(ctx), {}, {}
  for i, o in ipairs(ops) do by_id[o.id], ids[i] = o, o.id end
  w:alias(P .. ".Operation", ids, ("The %d operationIds of the Planfix REST API."):format(#ids))
  M.client_option_classes(w, P, ctx.rest.SPEC, { token = true })
  for _, o in ipairs(ops) do params_class(ctx, w, o, P .. ".params." .. M.ident(o.id)) end
  args_classes(ctx, w, by_id)
  local fields = resource_classes(ctx, w, by_id)
  table.insert(fields, 1, { "base_url", "string" })
  table.insert(fields, 2, { "page_size", "integer" })
  local var = w:class { name = P .. ".Client", doc = "The Planfix REST API client: planapi.planfix_rest{...}.",
    fields = fields, funcs = client_funcs(ctx, ops) }
  w:add("return " .. var)
  return w:text()
end

-- What each kind of sugar method gives, for the page.
local GIVES = { get = "the object", create = "the new id", call = "the result", each = "an item iterator",
  pages = "a page iterator", all = "every item, the pager", pager = "a pager" }

--- The resource sugar's rows for the page: method, operation, what it gives.
function R.sugar_rows(ctx)
  local resources, rows = require "planapi.planfix_rest.resources", {}
  for _, rname in ipairs(ctx.M.sorted_keys(resources.defs)) do
    local defs = resources.defs[rname]
    for _, m in ipairs(ctx.M.sorted_keys(defs)) do
      local kind, id = defs[m][1], defs[m][2]
      local args = {}
      for i, name in ipairs(ctx.rest.operation(id).path_params) do args[i] = name end
      args[#args + 1] = "params, opts"
      rows[#rows + 1] = { ("`rest.%s:%s(%s)`"):format(rname, m, table.concat(args, ", ")),
        ("[%s](#%s)"):format(id, id), GIVES[kind] }
    end
    for _, m in ipairs(ctx.M.sorted_keys(resources.extras[rname] or {})) do
      local fn = EXTRAS[rname][m]
      local args = {}
      for i, p in ipairs(fn.params) do args[i] = p[1]:gsub("%?$", "") end
      rows[#rows + 1] = { ("`rest.%s:%s(%s)`"):format(rname, m, table.concat(args, ", ")), fn.doc, "" }
    end
  end
  return rows
end

R.page = function(ctx) return require("defs.rest_page").page(ctx, operations(ctx), R.sugar_rows(ctx)) end

return R
