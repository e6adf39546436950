-- defs/planado.lua: the Planado part of the editor definitions and its page,
-- docs/api/planado.md, from planado/resources.lua (each resource's methods,
-- bound to a stand-in client: binding calls nothing) and fields.lua.
local docs = require "defs.docs"

local D = {}

local P = "planapi.planado"
local META = "planapi.Meta|planapi.Error"
local REF = { "ref", "string", "a uuid or an external_id" }

-- Each method's signature by name (resources.lua); fields: the resource's
-- fields class, or a plain table where its writes are not checked.
local function signature(name, fields, list_returns)
  local call_t, pager_t = { "opts?", P .. ".CallOptions" }, { "opts?", P .. ".PagerOptions" }
  local filters = { "params?", "table<string, any>", "filters (lists as key[]=, tables as key[sub]=)" }
  local SIGS = {
    get = { { REF, call_t }, { { "table?", "object" }, { META, "meta" } } },
    create = { { { "fields", fields }, call_t }, { { "string?", "uuid" }, { META, "meta" } } },
    update = { { REF, { "fields", fields }, call_t }, { { "string?", "uuid" }, { META, "meta" } } },
    upsert = { { { "external_id", "string" }, { "fields", fields }, call_t },
      { { "{ uuid: string, created: boolean, version: integer? }?", "result" }, { META, "meta" } } },
    ensure = { { { "external_id", "string" }, { "fields?", fields }, call_t },
      { { "table?", "object" }, { META, "meta" } } },
    delete = { { { "uuid", "string" }, call_t }, { { "table?", "result" }, { META, "meta" } } },
    history = { { { "uuid", "string" }, pager_t }, { { "fun(): table", "events" } } },
    requests = { { { "uuid", "string" }, filters, pager_t }, { { "fun(): table", "deliveries" } } },
    request = { { { "fields", fields }, call_t }, { { "string?", "uuid" }, { META, "meta" } } },
  }
  for kind, returns in pairs(list_returns) do SIGS[kind] = { { filters, pager_t }, returns } end
  local sig = assert(SIGS[name], "defs/planado.lua: no signature for the Planado method " .. name)
  return sig[1], sig[2]
end

-- A resource's methods, sorted (bound to a stand-in client).
function D.methods(ctx, rname)
  local res = require("planapi.planado.resources").bind({}, rname)
  return ctx.M.sorted_keys(res)
end

local function fields_classes(ctx, w)
  local fields = require "planapi.planado.fields"
  for _, kind in ipairs(ctx.M.sorted_keys(fields)) do
    local list = {}
    for _, f in ipairs(ctx.M.sorted_keys(fields[kind])) do
      local nullable = fields[kind][f]
      list[#list + 1] = { f .. "?", nullable and "any|planapi.Null" or "any",
        nullable and "planapi.null clears it" or "a value, or left out (unchanged)" }
    end
    w:class { name = P .. ".fields." .. kind, doc = "The documented fields of a " .. kind .. " write.", fields = list }
  end
end

local function resource_classes(ctx, w)
  local out = {}
  for _, rname in ipairs(require("planapi.planado.resources").names()) do
    local kind = ctx.help.PLANADO_KIND[rname]
    local fields_t = kind and (P .. ".fields." .. kind) or "table"
    local funcs = {}
    for _, m in ipairs(D.methods(ctx, rname)) do
      local params, returns = signature(m, fields_t, ctx.M.LIST_RETURNS)
      funcs[#funcs + 1] = { name = m, method = true, params = params, returns = returns }
    end
    w:class { name = P .. ".resource." .. rname, doc = "pd." .. rname .. ": Planado v2 /" .. rname, funcs = funcs }
    out[#out + 1] = { rname, P .. ".resource." .. rname }
  end
  return out
end

local function client_funcs(ctx)
  local http = "\"GET\"|\"POST\"|\"PATCH\"|\"DELETE\""
  local call_t = P .. ".CallOptions"
  return ctx.M.client_funcs({
    { name = "new", params = { { "opts", P .. ".Options" } }, returns = { { P .. ".Client" } } },
    { name = "call", method = true, params = { { "method", http }, { "path", "string", "relative to the base URL" },
      { "params?", "table", "the query of a GET/DELETE, the JSON body of a POST/PATCH" }, { "opts?", call_t } },
      returns = { { "table?", "result" }, { META, "meta" } } },
    { name = "prepare", method = true, params = { { "method", http }, { "path", "string" }, { "params?", "table" },
      { "opts?", call_t } }, returns = { { "planapi.Request" } } },
    { name = "create", method = true, params = { { "path", "string" }, { "body", "table" }, { "opts?", call_t },
      { "ref_path?", "string" } }, returns = { { "table?", "result" }, { META, "meta" } },
      doc = "A POST reconciled by its external_id instead of being sent twice." },
    { name = "check_fields", method = true,
      params = { { "kind", "string" }, { "body", "table" }, { "level?", "integer" } } },
  }, { "path", "string" }, P .. ".PagerOptions")
end

--- types/library/planapi/planado.lua
function D.render(ctx)
  local M, w = ctx.M, ctx.M.writer()
  w:add("---@meta", M.HEADER, "")
  w:alias(P .. ".Resource", require("planapi.planado.resources").names(), "The Planado API v2 resources.")
  M.client_option_classes(w, P, ctx.planado.SPEC, { api_key = true })
  fields_classes(ctx, w)
  local fields = resource_classes(ctx, w)
  table.insert(fields, 1, { "base_url", "string" })
  table.insert(fields, 2, { "strict", "boolean" })
  local var = w:class { name = P .. ".Client", doc = "The Planado API v2 client: planapi.planado{...}.",
    fields = fields, funcs = client_funcs(ctx) }
  w:add("return " .. var)
  return w:text()
end

-- ------------------------------------------------------------ page

-- What a method sends: "GET jobs/{uuid or external_id}" (cli/help's actions;
-- the paging methods send the list's GET).
local function sends(ctx, rname, m)
  local path = (ctx.help.PLANADO_CATALOG[rname] and "catalog/" or "") .. rname
  if ctx.M.LIST_RETURNS[m] then m = "all" end
  if m == "requests" then return ("GET %s/{uuid}/requests"):format(path) end
  for _, a in ipairs(ctx.help.PLANADO_ACTIONS) do
    if a[2] == m then return a[3]:format(path) end
  end
  return ""
end

local function method_rows(ctx, rname, kind)
  local rows = {}
  for _, m in ipairs(D.methods(ctx, rname)) do
    local params, returns = signature(m, kind and ("fields (" .. kind .. ")") or "table", ctx.M.LIST_RETURNS)
    local args, rets = {}, {}
    for i, p in ipairs(params) do args[i] = ("`%s`: `%s`"):format(p[1], p[2]) end
    for i, r in ipairs(returns) do rets[i] = r[2] or ("`" .. r[1] .. "`") end
    rows[#rows + 1] = { ("`pd.%s:%s`"):format(rname, m), table.concat(args, ", "), table.concat(rets, ", "),
      "`" .. sends(ctx, rname, m) .. "`" }
  end
  return rows
end

local function section(ctx, rname)
  local kind = ctx.help.PLANADO_KIND[rname]
  local out = { "## " .. rname, "",
    docs.table({ "method", "arguments", "returns", "sends" }, method_rows(ctx, rname, kind)) }
  local fields = require("planapi.planado.fields")[kind]
  if fields then
    local rows = {}
    for _, f in ipairs(ctx.M.sorted_keys(fields)) do
      rows[#rows + 1] = { "`" .. f .. "`", fields[f] and "yes: `planapi.null` clears it" or "no" }
    end
    out[#out + 1] = ""
    out[#out + 1] = ("The fields of its writes (%s; checked before sending unless `strict = false`):"):format(kind)
    out[#out + 1] = ""
    out[#out + 1] = docs.table({ "field", "may be null" }, rows)
  end
  out[#out + 1] = ""
  out[#out + 1] = D.example(ctx, rname)
  return table.concat(out, "\n")
end

--- A short example of a resource, runnable as it is: its list, a get or a
-- print request, and a create.
function D.example(ctx, rname)
  local has = {}
  for _, m in ipairs(D.methods(ctx, rname)) do has[m] = true end
  local line
  if has.each then
    line = ("for item in pd.%s:each() do print(item.uuid) end"):format(rname)
  elseif has.request then
    line = ('local uuid, err = pd.%s:request { job = { uuid = "job-uuid" },\n'
      .. '  print_template = { uuid = "template-uuid" } }'):format(rname)
  else
    line = ('local object, err = pd.%s:get("crm-1")'):format(rname)
  end
  if has.create and rname ~= "users" then
    line = line .. ("\nlocal uuid, err = pd.%s:create { external_id = \"crm-1\" }"):format(rname)
  end
  return "```lua\n" .. line .. "\n```"
end

--- docs/api/planado.md
function D.page(ctx)
  local names = require("planapi.planado.resources").names()
  local out = { docs.head("Planado API v2: every resource", "lua/planapi/planado/resources.lua and fields.lua", {
    ("The %d resources of the client (see README, \"Quick start: Planado API v2\"). A `ref` is a uuid or an"
      .. " external_id; a key left out of `fields` is left unchanged, `planapi.null` clears it where the API"
      .. " allows. Anything else: `pd:call(method, path, params, opts)`."):format(#names), "",
    "```lua", 'local pd = require("planapi").planado { api_key = os.getenv "PLANADO_API_KEY" }', "```" },
    "Resources", names) }
  for _, n in ipairs(names) do out[#out + 1] = section(ctx, n) end
  return table.concat(out, "\n\n") .. "\n"
end

return D
