-- defs/facade.lua: types/library/planapi.lua (require "planapi": the
-- facade, null, the error, the options every client shares, events, log,
-- metrics, pagers) and types/config.json, the addon's settings.
local F = {}

--- The addon's config.json: a Lua language server that sees
-- require "planapi" in a workspace offers to enable the library.
function F.config()
  return table.concat({
    "{",
    '  "name": "planapi",',
    '  "words": ["require%s*%(?%s*[\'\\"]planapi[\'\\".]"],',
    '  "settings": {}',
    "}",
  }, "\n") .. "\n"
end

local function shared_options(ctx, w)
  w:class { name = "planapi.ClientOptions", doc = "The options every client takes: transport, pacing, retries, "
    .. "quota, call events, guards, the answer's shape.",
    fields = ctx.M.option_fields(ctx.M.shared_option_types(), ctx.docs.option_doc) }
  w:class { name = "planapi.PagerOptions", doc = "The options every pager takes.",
    fields = ctx.M.option_fields(ctx.Pager.OPTIONS, ctx.docs.option_doc) }
end

local function receivers(ctx, w)
  local common = ctx.common
  w:class { name = common.RECEIVER_PARENT, doc = "The options every event receiver takes.",
    fields = common.RECEIVER_FIELDS }
  for _, cls in ipairs(common.RECEIVERS) do
    w:class { name = cls.name, parent = common.RECEIVER_PARENT, fields = cls.fields }
  end
  for _, cls in ipairs(common.EVENTS_CLASSES) do w:class(cls) end
end

local function constructors(w)
  w:add("---The Planfix REST client's constructor: planapi.planfix_rest{...}.",
    "---@class planapi.planfix_rest.Constructor",
    "---@overload fun(opts: planapi.planfix_rest.Options): planapi.planfix_rest.Client",
    "---@field operations fun(): string[] the operationIds, sorted",
    "---@field operation fun(op: planapi.planfix_rest.Operation): table? one operation's description", "",
    "---The Planfix XML client's constructor: planapi.planfix_xml{...}.",
    "---@class planapi.planfix_xml.Constructor",
    "---@overload fun(opts: planapi.planfix_xml.Options): planapi.planfix_xml.Client",
    "---@field methods fun(): string[] the documented methods, sorted",
    "---@field DATA_CENTRES table<string, string> the endpoints by data centre", "")
end

local FACADE_FIELDS = {
  { "version", "string" }, { "null", "planapi.Null", "sends JSON null" },
  { "error_kinds", "planapi.ErrorKind[]" }, { "json", "planapi.json" }, { "policy", "planapi.policy" },
  { "cursor", "planapi.cursor" }, { "webhook_store", "planapi.webhook_store" }, { "events", "planapi.events" },
  { "log", "planapi.log" }, { "metrics", "planapi.metrics" }, { "cache", "planapi.cache" },
  { "core", "table", "the C core" },
  { "planfix_rest", "planapi.planfix_rest.Constructor" }, { "planfix_xml", "planapi.planfix_xml.Constructor" },
}

local FACADE_FUNCS = {
  { name = "array", params = { { "t?", "table" } }, returns = { { "table" } },
    doc = "Marks t (or a new table) so it is sent as a JSON array, even empty." },
  { name = "is_array", params = { { "t", "any" } }, returns = { { "boolean" } } },
  { name = "error", params = { { "fields", "{ kind: planapi.ErrorKind, message: string, [string]: any }" } },
    returns = { { "planapi.Error" } } },
  { name = "is_error", params = { { "v", "any" } }, returns = { { "boolean" } } },
  { name = "planado", params = { { "opts", "planapi.planado.Options" } }, returns = { { "planapi.planado.Client" } } },
  { name = "planfix_events", params = { { "opts", "planapi.planfix_events.Options" } },
    returns = { { "planapi.events.Receiver" } }, doc = "A receiver of Planfix scenario requests." },
  { name = "planado_webhook", params = { { "opts", "planapi.planado_webhook.Options" } },
    returns = { { "planapi.planado_webhook.Hook" } }, doc = "A receiver of Planado webhooks." },
  { name = "planfix_raw", params = { { "wire", "any", "the value as the API takes it" } },
    returns = { { "planapi.PlanfixRaw" } },
    doc = "A custom-field value set_fields sends as given, unencoded and unchecked (the read-back still judges it)." },
  { name = "planado_replay", params = { { "pd", "planapi.planado.Client" }, { "hook", "planapi.events.Receiver" },
    { "webhook_uuid", "string" }, { "opts?", "{ handler: function, all: boolean, params: table, path: string }" } },
    returns = { { "table", "report" } }, doc = "Missed deliveries from the webhook's delivery log." },
}
F.FACADE_FIELDS, F.FACADE_FUNCS = FACADE_FIELDS, FACADE_FUNCS

--- The files of the modules of their own: { [path] = text }, path under library/.
function F.module_files(ctx)
  local out = {}
  for _, file in ipairs(ctx.common.MODULE_FILES) do
    local w = ctx.M.writer()
    w:add("---@meta", ctx.M.HEADER, "")
    local first
    if file.returns then -- a class declared elsewhere
      first = ctx.M.ident(file.returns)
      w:add("---@type " .. file.returns, ("local %s = {}"):format(first), "")
    end
    for _, cls in ipairs(file.classes or {}) do
      local var = w:class(cls)
      first = first or var
    end
    w:add("return " .. first)
    out[file.path] = w:text()
  end
  return out
end

--- types/library/planapi.lua
function F.render(ctx)
  local M, w = ctx.M, ctx.M.writer()
  w:add("---@meta", M.HEADER, "")
  w:alias("planapi.ErrorKind", require("planapi.core").error_kinds, "The kinds of planapi.Error.")
  for _, cls in ipairs(ctx.common.CLASSES) do w:class(cls) end
  shared_options(ctx, w)
  for _, cls in ipairs(ctx.common.MODULES) do w:class(cls) end
  receivers(ctx, w)
  constructors(w)
  local var = w:class { name = "planapi", doc = "require \"planapi\": the three clients, the receivers, the error.",
    fields = FACADE_FIELDS, funcs = FACADE_FUNCS }
  w:add("return " .. var)
  return w:text()
end

return F
