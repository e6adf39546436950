-- planapi: Planfix (XML and REST) and Planado API clients with a C core.
--   local planapi = require "planapi"
--   local rest = planapi.planfix_rest{ account = "acme", token = os.getenv "PLANFIX_TOKEN" }
local core = require "planapi.core"

local planapi = {
  version = core.version,
  --- planapi.null: send JSON null (the same value as cjson.null). In results a null member of an
  -- object is left out (reads as nil) unless nulls = "keep"; a null item of an array stays planapi.null.
  null = core.null,
  --- planapi.array(t): mark t (or a new table) so it is sent as a JSON array, even empty.
  array = core.array,
  --- planapi.is_array(t): true for a marked table: every decoded JSON array and XML list container.
  is_array = core.is_array,
  --- planapi.error{ kind =, message =, ... } and planapi.is_error(v): the one error type.
  error = core.error,
  is_error = core.is_error,
  error_kinds = core.error_kinds,
  --- planapi.json.encode(v) -> text; planapi.json.decode(text [, { nulls = "keep" }]) -> v | nil, err
  json = { encode = core.json_encode, decode = core.json_decode },
  policy = require "planapi.policy",
  --- planapi.cursor.save(path, pager:position()) / .load(path) / .export{ output =, cursor = }: resumable exports
  cursor = require "planapi.cursor",
  --- planapi.webhook_store.memory{...} / .file{ dir = ... }: where webhook receivers remember events
  webhook_store = require "planapi.webhook_store",
  --- planapi.events.receiver{...}, .memory{...}, .file{ dir = }: the receiver core and its stores
  events = require "planapi.events",
  --- planapi.log.jsonl(file | path | function): call events as JSON Lines, for the `hooks` option
  log = require "planapi.log",
  --- planapi.metrics.new{ shared = ngx.shared.DICT }: counters fed by the hooks, as Prometheus text
  metrics = require "planapi.metrics",
  --- planapi.cache.new{ scope =, ttl =, namespace = }: the shared definitions cache (memory, file, shm, redis)
  cache = require "planapi.cache",
  --- planapi.planfix_raw(wire): a custom-field value set_fields sends as given, unencoded and
  -- unchecked (a form planapi refuses or does not know; the read-back still judges it)
  planfix_raw = function(wire) return require("planapi.planfix_fields.types").raw(wire) end,
  core = core,
}

--- planapi.planfix_rest{ account | base_url, token, ... } -> client (see README)
-- planapi.planfix_rest.operations() / .operation(op_id): the operations it
-- knows, without a client (README and the error messages name them so).
planapi.planfix_rest = setmetatable({
  operations = function() return require("planapi.planfix_rest").operations() end,
  operation = function(op_id) return require("planapi.planfix_rest").operation(op_id) end,
}, {
  __call = function(_, opts) return require("planapi.planfix_rest").new(opts) end,
})

--- planapi.planfix_xml{ account, api_key, token | login + password, ... } -> client (see README)
-- planapi.planfix_xml.methods() / .DATA_CENTRES without a client, as README
-- and the unknown-method error name them.
planapi.planfix_xml = setmetatable({
  methods = function() return require("planapi.planfix_xml").methods() end,
}, {
  __call = function(_, opts) return require("planapi.planfix_xml").new(opts) end,
  __index = function(_, key)
    if key == "DATA_CENTRES" then return require("planapi.planfix_xml").DATA_CENTRES end
  end,
})

--- planapi.planado{ api_key, url, auth_header, strict, ... } -> client (see README)
function planapi.planado(opts)
  return require("planapi.planado").new(opts)
end

--- planapi.planfix_events{ secret, secret_in, id, store, ... } -> receiver of Planfix scenario requests (see README)
function planapi.planfix_events(opts)
  return require("planapi.planfix_events").new(opts)
end

--- planapi.planado_webhook{ secret, store, ... } -> receiver (see README)
function planapi.planado_webhook(opts)
  return require("planapi.planado.webhook").new(opts)
end

--- planapi.planado_replay(pd, hook, webhook_uuid, { handler = }) -> report: missed deliveries
-- from the webhook's delivery log, fed through hook:receive (see README)
function planapi.planado_replay(pd, hook, webhook_uuid, opts)
  return require("planapi.planado.replay").replay(pd, hook, webhook_uuid, opts)
end

return planapi
