-- defs/xml.lua: the Planfix XML part of the editor definitions and its page,
-- docs/api/planfix-xml.md, from planfix_xml/methods.lua (the client's own
-- xml.methods and xml.method), params.lua and the resource sugar's table.
local docs = require "defs.docs"

local X = {}

local P = "planapi.planfix_xml"
local META = "planapi.Meta|planapi.Error"
-- The client adds these to every request.
local ADDED = { account = true, sid = true, signature = true }

--- The top-level elements of a method's documented parameters, in order:
-- { name, nested } ("task.{id|general}, fields.field*" -> task, fields).
function X.top_params(text)
  local flat = text:gsub("%b{}", ""):gsub("%b()", "")
  local out, seen = {}, {}
  for item in flat:gmatch "[^,|]+" do
    local name, rest = item:match "^%s*([%a_][%w_]*)(%S*)"
    if name and not seen[name] and not ADDED[name] then
      seen[name] = true
      out[#out + 1] = { name = name, nested = rest ~= "" }
    end
  end
  return out
end

local function params_class(w, name, text)
  local fields = {}
  for _, p in ipairs(X.top_params(text)) do
    fields[#fields + 1] = { p.name .. "?", p.nested and "table" or "string|number|boolean|table" }
  end
  w:class { name = P .. ".params." .. name:gsub("%.", "_"),
    doc = name .. ": " .. (text ~= "" and text or "no parameters"), fields = fields }
end

-- The methods as entries of the overloads (gen_defs' add_overloads).
local function overload_entries(ctx, names)
  local out = {}
  for i, name in ipairs(names) do
    out[i] = { name = name, params = P .. ".params." .. ctx.M.ident(name), optional = true,
      paged = ctx.xml.method(name).paged == true }
  end
  return out
end

local ENTITY = '"task"|"contact"|"project"'
local NAMED_ERR = { "planapi.Error?", "err" }
local function set_fields(group)
  return { set_fields = { params = { { "id", "integer" }, { "values", "table<string|integer, any>" },
    { "opts?", "{ read_back: boolean?, resolve: function?, utc_offset: number?, silent: boolean?, "
      .. "timeout: number? }" } },
    returns = { { "table?", "result" }, { META, "meta" } },
    doc = group .. " custom data by field name (the definitions option), read back after (result.verified)." } }
end
local HANDBOOK = { "handbook", "string|integer" }
local MATCH = { "match", "table<string|integer, any>|string" }

local EXTRAS = {
  task = set_fields "task.updateCustomData: the task's",
  contact = set_fields "contact.updateCustomData: the contact's",
  project = set_fields "project.update: the project's",
  fields = {
    list = { params = { { "entity", ENTITY } }, returns = { { "table[]?", "definitions" }, NAMED_ERR },
      doc = "The custom fields of an entity, from the definitions option's loader." },
    get = { params = { { "entity", ENTITY }, { "name_or_id", "string|integer" } },
      returns = { { "table?", "definition" }, NAMED_ERR },
      doc = "One custom field by name (exact, then ignoring case) or id." },
    invalidate = { params = { { "entity?", ENTITY } }, doc = "Read the definitions again on next use." },
  },
  handbook = {
    find = { params = { HANDBOOK, MATCH, { "opts?", "{ create_missing: boolean?, resolve: function? }" } },
      returns = { { "table?", "record" }, NAMED_ERR },
      doc = "The one record whose fields hold the values (every page read, cached); create_missing adds it." },
    find_all = { params = { HANDBOOK, MATCH }, returns = { { "table[]?", "records" }, NAMED_ERR },
      doc = "Every record whose fields hold the values: { key, name, fields = { [name] = value } }." },
    invalidate = { doc = "Read the handbooks, their fields and records again on next use." },
  },
  file = { download = { params = { { "id", "integer" }, { "opts?", "{ path: string, follow: boolean }" } },
    returns = { { "string|table|nil", "file" }, { META, "meta" } },
    doc = "file.download: the bytes, or { file, size } with a path, or { location }" } },
}

local function resource_classes(ctx, w)
  local resources = require "planapi.planfix_xml.resources"
  local fields = {}
  for _, rname in ipairs(ctx.M.sorted_keys(resources.defs)) do
    local funcs, defs = {}, resources.defs[rname]
    for _, m in ipairs(ctx.M.sorted_keys(defs)) do
      local d = defs[m]
      funcs[#funcs + 1] = { name = m, method = true, doc = d[1] .. (d.wrap and (" (inside <" .. d.wrap .. ">)") or ""),
        params = { { "params?", "table" }, { "opts?", d.kind and (P .. ".PagerOptions") or (P .. ".CallOptions") } },
        returns = ctx.M.LIST_RETURNS[d.kind] or { { "table?", "result" }, { META, "meta" } } }
    end
    fields[#fields + 1] = ctx.M.resource_class(w, P, "xml", rname, funcs, resources.extras[rname], EXTRAS[rname])
  end
  return fields
end

local function client_funcs(ctx, names)
  local m_t, call_t = P .. ".Method", P .. ".CallOptions"
  return ctx.M.add_overloads(ctx.M.client_funcs({
    { name = "new", params = { { "opts", P .. ".Options" } }, returns = { { P .. ".Client" } } },
    { name = "methods", returns = { { "string[]" } }, doc = "The documented method names, sorted." },
    { name = "method", params = { { "name", m_t } }, returns = { { "table?" } },
      doc = "One method: root, list, paged, counts, writes..." },
    { name = "call", method = true, params = { { "method", m_t }, { "params?", "table" }, { "opts?", call_t } },
      returns = { { "table?", "result" }, { META, "meta" } },
      doc = "Any method by name; params as nested tables (arrays repeat elements, \"@name\" keys are attributes)." },
    { name = "prepare", method = true, params = { { "method", m_t }, { "params?", "table" }, { "opts?", call_t } },
      returns = { { "planapi.Request" } } },
    { name = "login", method = true, returns = { { "string?", "sid" }, { "planapi.Error?", "err" } } },
    { name = "download", method = true, params = { { "file_id", "integer" }, { "opts?", "table" } },
      returns = { { "string|table|nil", "file" }, { META, "meta" } } },
  }, { "method", m_t }, P .. ".PagerOptions"), P .. ".Client", "method", overload_entries(ctx, names), call_t,
    P .. ".PagerOptions")
end

--- types/library/planapi/planfix_xml.lua
function X.render(ctx)
  local M, w = ctx.M, ctx.M.writer()
  w:add("---@meta", M.HEADER, "")
  local names = ctx.xml.methods()
  w:alias(P .. ".Method", names, ("The %d documented Planfix XML API methods."):format(#names))
  M.client_option_classes(w, P, ctx.xml.SPEC, { account = true, api_key = true })
  for _, name in ipairs(names) do params_class(w, name, ctx.xml_params[name] or "") end
  local fields = resource_classes(ctx, w)
  for i, f in ipairs { { "account", "string" }, { "mode", "\"token\"|\"login\"" }, { "url", "string" },
    { "DATA_CENTRES", "table<string, string>" } } do
    table.insert(fields, i, f)
  end
  local var = w:class { name = P .. ".Client", doc = "The Planfix XML API client: planapi.planfix_xml{...}.",
    fields = fields, funcs = client_funcs(ctx, names) }
  w:add("return " .. var)
  return w:text()
end

-- ------------------------------------------------------------ page

local function example(ctx, name, info)
  local id = ctx.help.xml_id_param(name)
  local params = "{}"
  if id then
    -- task.id -> { task = { id = 1 } }
    params = "1"
    for part in id:reverse():gmatch "[^.]+" do params = ("{ %s = %s }"):format(part:reverse(), params) end
  elseif name:match "%.add$" then
    params = ("{ %s = { --[[ its fields ]] } }"):format(info.group)
  end
  local lines = { "```lua", ("local result, err = xml:call(%q, %s)"):format(name, params) }
  if info.paged then lines[#lines + 1] = ("for item in xml:each(%q, %s) do print(item.id) end"):format(name, params) end
  lines[#lines + 1] = "```"
  return table.concat(lines, "\n")
end

local function section(ctx, name)
  local info, text = ctx.xml.method(name), ctx.xml_params[name] or ""
  local out = { "### " .. name, "", ctx.help.xml_summary(info) .. "." }
  if info.silent then out[#out + 1] = "Takes `silent` (the change notifies no one)." end
  out[#out + 1] = ""
  out[#out + 1] = "Parameters: " .. (text ~= "" and ("`" .. text .. "`") or "none") .. "."
  out[#out + 1] = ""
  out[#out + 1] = example(ctx, name, info)
  return table.concat(out, "\n")
end

local KIND_GIVES = { all = "every item, the pager", each = "an item iterator", pages = "a page iterator",
  pager = "a pager" }

-- The resource sugar's rows for the page: method, XML method, what it gives.
local function sugar_rows(ctx)
  local resources, rows = require "planapi.planfix_xml.resources", {}
  for _, rname in ipairs(ctx.M.sorted_keys(resources.defs)) do
    local defs = resources.defs[rname]
    for _, m in ipairs(ctx.M.sorted_keys(defs)) do
      local d = defs[m]
      local gives = KIND_GIVES[d.kind] or (d.unwrap and ("the `<" .. d.unwrap .. ">` element") or "the result")
      rows[#rows + 1] = { ("`xml.%s:%s(params, opts)`"):format(rname, m),
        ("[%s](#%s)%s"):format(d[1], docs.anchor(d[1]), d.wrap and (" (params inside `" .. d.wrap .. "`)") or ""),
        gives }
    end
    for _, m in ipairs(ctx.M.sorted_keys(resources.extras[rname] or {})) do
      rows[#rows + 1] = { ("`xml.%s:%s(id, opts)`"):format(rname, m), EXTRAS[rname][m].doc, "" }
    end
  end
  return rows
end

--- docs/api/planfix-xml.md
function X.page(ctx)
  local groups, order = docs.group(ctx.xml.methods(), function(name) return ctx.xml.method(name).group end)
  local out = { docs.head("Planfix XML API: every method", "lua/planapi/planfix_xml/methods.lua and params.lua", {
    ("All %d documented methods, as `xml:call(method, params, opts)` takes them (see README, \"Quick start: Planfix"
      .. " XML API\"). Parameters are nested tables: `x.{a,b}` is x.a and x.b, `a|b` either one, `*` an element"
      .. " that may repeat (a Lua array); account, sid and signature are added by the client."):format(
      #ctx.xml.methods()), "",
    "```lua",
    'local xml = require("planapi").planfix_xml {',
    '  account = "acme", api_key = os.getenv "PLANFIX_API_KEY", token = os.getenv "PLANFIX_XML_TOKEN" }',
    "```" }, "Groups", order, true) }
  for _, g in ipairs(order) do
    out[#out + 1] = "## " .. g
    for _, name in ipairs(groups[g]) do out[#out + 1] = section(ctx, name) end
  end
  out[#out + 1] = docs.sugar_section("xml", sugar_rows(ctx))
  return table.concat(out, "\n\n") .. "\n"
end

return X
