-- defs/common.lua: the parts of the editor definitions (types/library/) that
-- no runtime table describes, written once as data for tools/gen_defs.lua:
-- the error and the call's meta, pacing, retries, quota, call events, the
-- log and metrics sinks, pagers, cursors and the event receivers. spec/26
-- reads the constructors' own "valid: ..." lists and fails when one of their
-- options is missing here.
--
-- A class: { name, parent = , doc =, fields = { { name, type, doc } },
-- funcs = { { name, params = { { name, type } }, returns = { { type, name } }, doc =, method = true } } }
-- A field name ending in "?" is optional.

local M = {}

local RESULT = { { "true?" }, { "planapi.Error?", "err" } }

local ERROR_FIELDS = {
  { "kind", "planapi.ErrorKind", "one of the kinds: config, transport, timeout, tls, http, api, decode, auth, "
    .. "rate_limit, quota, io" },
  { "message", "string", "what happened, with the documented meaning of the code" },
  { "retryable", "boolean", "trying again later may succeed" },
  { "status?", "integer", "the HTTP status, when there was a response" },
  { "code?", "integer|string", "the API's error code (Planfix REST: a number; XML: a string such as \"0005\")" },
  { "retry_after?", "number", "seconds the server asked to wait" },
  { "operation?", "string", "the operationId, XML method or Planado `METHOD path`" },
  { "attempts?", "integer", "how many tries were made" },
  { "waited?", "number", "seconds the retries waited in all" },
  { "remaining?", "integer", "the daily budget left, from X-RateLimit-Remaining" },
  { "request_sent?", "boolean", "false when the request certainly never reached the server" },
  { "rejected?", "boolean", "the server refused the request without acting on it" },
  { "where?", "string", "for a config error raised by the Lua layer: file:line of the caller's line" },
  { "valid?", "string[]", "for an unknown name: the valid names" },
  { "failures?", "table[]", "a partial update as an error (partial = \"error\"): the fields not applied" },
  { "result?", "table", "a partial update as an error: the whole answer (the other fields were applied)" },
  { "body?", "string", "Planado: the raw answer, redacted, cut to 2,000 bytes" },
  { "interrupted?", "boolean", "the call was stopped by Ctrl-C (core.catch_interrupt)" },
  { "external_id_taken?", "boolean", "Planado: a create refused because its external_id is taken" },
  { "pacer_failed?", "boolean", "the shared (Redis) pacer failed inside the transfer" },
  { "answer?", "integer", "an event receiver's refusal: the HTTP status it answers" },
}
M.ERROR_FIELDS = ERROR_FIELDS

M.CLASSES = {
  { name = "planapi.Error", doc = "The one error type: argument mistakes raise it (kind \"config\"), runtime "
    .. "failures return `nil, err`. tostring(err) is one line and never holds a secret.", fields = ERROR_FIELDS },
  { name = "planapi.Null", doc = "planapi.null: sends JSON null (the same value as cjson.null)." },
  { name = "planapi.PlanfixRaw", doc = "planapi.planfix_raw(wire): a custom-field value sent as given.",
    fields = { { "value", "any" } } },
  { name = "planapi.Meta", doc = "The second value of a successful call.", fields = {
    { "status", "integer", "the HTTP status" },
    { "headers", "table<string, string>", "the answer's headers, lower case" },
    { "attempts", "integer", "tries made" }, { "remaining?", "integer", "X-RateLimit-Remaining, when sent" },
    { "waited?", "number", "seconds the retries waited" }, { "dry_run?", "boolean", "a dry run answered the call" },
    { "recovered?", "boolean", "Planado: a create found by its external_id after an unknown outcome" },
  } },
  { name = "planapi.Request", doc = "A prepared request (pure: nothing sent yet).", fields = {
    { "method", "string" }, { "url", "string" }, { "headers", "table<string, string>" },
    { "body?", "string" }, { "operation?", "string" }, { "timeout?", "number" },
  } },
  { name = "planapi.Response", doc = "What a transport answers.", fields = {
    { "status", "integer" }, { "headers", "table<string, string>" }, { "body", "string" },
  } },
  { name = "planapi.Rate", doc = "Pacing: `rate` requests per `per` seconds.", fields = {
    { "rate?", "number", "requests per period" }, { "per?", "number", "the period, seconds" },
    { "burst?", "number", "requests at once" }, { "margin?", "number", "seconds of slack per interval" },
  } },
  { name = "planapi.RetryOptions", doc = "The retry policy's options (planapi.policy.new).", fields = {
    { "attempts?", "integer", "tries in all, the first one included (4)" },
    { "base?", "number", "first backoff ceiling, seconds (0.5)" },
    { "cap?", "number", "largest backoff ceiling, seconds (30)" },
    { "max_wait?", "number", "a Retry-After longer than this ends the call instead (120)" },
    { "random?", "fun(): number", "[0, 1) for the jitter (math.random)" },
    { "on_retry?", "fun(err: planapi.Error, attempt: integer, wait: number): boolean?",
      "called before each wait; false stops retrying" },
  } },
  { name = "planapi.Policy", doc = "A retry policy object, shareable by clients.", funcs = {
    { name = "delay", method = true, params = { { "err", "planapi.Error" }, { "attempt", "integer" },
      { "idempotent", "boolean" } }, returns = { { "number|false", "wait" } },
      doc = "Seconds to wait before the next attempt, or false to give up." },
  } },
  { name = "planapi.QuotaOptions", doc = "The account's daily request budget.", fields = {
    { "limit?", "number", "requests a day" }, { "reserve?", "number", "stop when this many are left" },
    { "utc_offset?", "number", "hours from UTC at which the day resets" },
  } },
  { name = "planapi.Writes", doc = "Write guards: which writes may be sent.", fields = {
    { "allow?", "string[]", "operations, methods or resources allowed" },
    { "projects?", "integer[]", "Planfix: only tasks of these projects" },
  } },
  { name = "planapi.HookEvent", doc = "A call event: a fresh table of plain values, never a credential.", fields = {
    { "event", "\"request\"|\"response\"|\"retry\"|\"error\"|\"dry_run\"" },
    { "api", "\"planfix_rest\"|\"planfix_xml\"|\"planado\"" }, { "account", "string" },
    { "operation", "string" }, { "method", "string" }, { "attempt", "integer" }, { "elapsed", "number" },
    { "url?", "string" }, { "bytes?", "integer" }, { "wait?", "number" }, { "status?", "integer" },
    { "remaining?", "integer" }, { "kind?", "planapi.ErrorKind" }, { "retryable?", "boolean" },
    { "request_sent?", "boolean" }, { "message?", "string" }, { "body?", "string" },
  } },
  { name = "planapi.Hooks", doc = "Call events: functions called at each step of a call.", fields = {
    { "request?", "fun(ev: planapi.HookEvent)", "an attempt is about to be sent" },
    { "response?", "fun(ev: planapi.HookEvent)", "an attempt got an HTTP answer, whatever its status" },
    { "retry?", "fun(ev: planapi.HookEvent)", "an attempt failed; the client waits ev.wait seconds" },
    { "error?", "fun(ev: planapi.HookEvent)", "the call failed for good" },
    { "dry_run?", "fun(ev: planapi.HookEvent)", "a dry run answered the call, unsent" },
    { "hook_error?", "fun(message: string, ev: planapi.HookEvent)", "a hook raised" },
    { "bodies?", "boolean|integer", "add the bodies, redacted (a number: cut to N bytes)" },
  } },
  { name = "planapi.Pager", doc = "Pages of a list, resumable from pager:position().", fields = {
    { "truncated?", "boolean", "a cap stopped the walk before the end" },
  }, funcs = {
    { name = "next_page", method = true, returns = { { "table[]|false|nil", "items" }, { "planapi.Error?", "err" } } },
    { name = "position", method = true, returns = { { "table|false", "cursor" } } },
    { name = "all", method = true, returns = { { "table[]?", "items" }, { "planapi.Error?", "err" } } },
    { name = "pages", method = true, returns = { { "fun(): table[]", "iterator" } } },
    { name = "each", method = true, returns = { { "fun(): table", "iterator" } } },
  } },
}

-- The modules of the facade beside the clients.
M.MODULES = {
  { name = "planapi.json", fields = {}, funcs = {
    { name = "encode", params = { { "v", "any" } }, returns = { { "string" } } },
    { name = "decode", params = { { "text", "string" }, { "opts?", "{ nulls: \"keep\"|\"absent\" }" } },
      returns = { { "any" }, { "planapi.Error?", "err" } } },
  } },
  { name = "planapi.policy", funcs = {
    { name = "new", params = { { "opts?", "planapi.RetryOptions" } }, returns = { { "planapi.Policy" } } },
    { name = "is_policy", params = { { "v", "any" } }, returns = { { "boolean" } } },
  } },
  { name = "planapi.cursor", doc = "Resumable exports.", funcs = {
    { name = "save", params = { { "path", "string" }, { "position", "table|false" }, { "meta?", "table" } },
      returns = { { "true?" }, { "planapi.Error?", "err" } } },
    { name = "load", params = { { "path", "string" } }, returns = { { "table?" }, { "planapi.Error?", "err" } } },
    { name = "export", params = { { "opts", "planapi.cursor.ExportOptions" } },
      returns = { { "planapi.cursor.Export?" }, { "planapi.Error?", "err" } } },
  } },
  { name = "planapi.cursor.ExportOptions", fields = {
    { "output", "string", "the JSON Lines file" }, { "cursor?", "string", "the cursor file (resume from it)" },
    { "meta?", "table", "kept in the cursor beside the position" },
  } },
  { name = "planapi.cursor.Export", doc = "A resumable export into a JSON Lines file.", fields = {
    { "position", "table|false|nil", "where the pager starts (false: the export had finished)" },
    { "meta?", "table", "what the cursor held beside the position" },
  }, funcs = {
    { name = "write", method = true, params = { { "text", "string" } }, returns = RESULT },
    { name = "line", method = true, params = { { "value", "any" } }, returns = RESULT },
    { name = "save", method = true, params = { { "position", "table|false" } }, returns = RESULT },
    { name = "size", method = true, returns = { { "integer" } } },
    { name = "close", method = true, returns = RESULT },
    { name = "run", method = true, params = { { "pager", "planapi.Pager" }, { "encode?", "fun(item: any): string" } },
      returns = RESULT },
  } },
  { name = "planapi.log", funcs = {
    { name = "jsonl", params = { { "dest", "file*|string|fun(line: string)" },
      { "opts?", "{ bodies: boolean|integer }" } },
      returns = { { "planapi.Hooks" } }, doc = "Call events as JSON Lines, for the `hooks` option." },
  } },
  { name = "planapi.metrics", fields = { { "CONTENT_TYPE", "string" }, { "SERIES", "table" } }, funcs = {
    { name = "new", params = { { "opts?", "{ shared: table }" } }, returns = { { "planapi.Metrics" } } },
  } },
  { name = "planapi.Metrics", funcs = {
    { name = "hooks", method = true, returns = { { "planapi.Hooks" } } },
    { name = "render", method = true, returns = { { "string" } }, doc = "Prometheus text" },
    { name = "value", method = true, params = { { "name", "string" }, { "labels?", "table<string, string>" } },
      returns = { { "number?" } } },
  } },
  { name = "planapi.cache", doc = "The shared definitions cache.", funcs = {
    { name = "new", params = { { "opts?", "planapi.cache.Options" } }, returns = { { "planapi.Cache" } } },
  } },
  { name = "planapi.cache.Options", fields = {
    { "scope?", "string", "\"memory\" (default), \"file:/dir\", \"shm:NAME\" or \"redis://host:port/db\"" },
    { "ttl?", "number", "seconds an entry is kept (3600)" },
    { "namespace?", "string", "keeps caches sharing a scope apart (no secret in it)" },
    { "clock?", "fun(): number", "the TTL's wall clock in seconds (os.time)" },
    { "sleep?", "fun(seconds: number)", "a waiter's pause (ngx.sleep in nginx, else a blocking one)" },
    { "wait?", "number", "seconds a miss waits for another's load before loading itself (30)" },
    { "secrets?", "string[]", "refused in any key or value written" },
    { "connect?", "function", "the Redis scope's socket (as the limiter's)" },
  } },
  { name = "planapi.Cache", funcs = {
    { name = "get", method = true, params = { { "key", "string" } },
      returns = { { "any" }, { "planapi.Error?", "err" } } },
    { name = "set", method = true, params = { { "key", "string" }, { "value", "any" }, { "ttl?", "number" } },
      returns = { { "true?" }, { "planapi.Error?", "err" } } },
    { name = "fetch", method = true, params = { { "key", "string" }, { "loader", "fun(): any, planapi.Error?" },
      { "ttl?", "number" } }, returns = { { "any" }, { "planapi.Error?", "err" } },
      doc = "The value, loaded on a miss once for every concurrent miss of the scope." },
    { name = "invalidate", method = true, params = { { "key", "string" } },
      returns = { { "true?" }, { "planapi.Error?", "err" } } },
    { name = "invalidate_prefix", method = true, params = { { "prefix", "string" } },
      returns = { { "true?" }, { "planapi.Error?", "err" } } },
  } },
}

-- The event receivers: planapi.events.receiver, planapi.planfix_events, planapi.planado_webhook.
local RECEIVER_FIELDS = {
  { "secret?", "string", "the shared secret, compared in constant time" },
  { "allow_unsigned?", "boolean", "accept deliveries without a secret (tests only)" },
  { "store?", "planapi.events.Store", "where deliveries are claimed (memory by default)" },
  { "max_body?", "integer", "the largest body accepted (1 MiB)" },
  { "lease?", "number", "seconds a claimed event is held by its handler (60)" },
  { "ttl?", "number", "seconds an event id is remembered (8 days)" },
  { "clock?", "fun(): number", "inject time" },
  { "retry_delay?", "number", "first wait before a failed handler runs again (30)" },
  { "max_retry_delay?", "number", "longest such wait (3600)" },
  { "max_attempts?", "integer", "runs before the event is recorded failed (25)" },
  { "nulls?", "\"absent\"|\"keep\"", "JSON nulls in the payload" },
}
M.RECEIVER_FIELDS = RECEIVER_FIELDS

M.RECEIVERS = {
  { name = "planapi.events.ReceiverOptions", fields = {
    { "secret_in?", "string", "\"header:Name\", \"field:name\" or \"query:name\"" },
    { "parse?", "fun(request: table, fields: table): table?, string?", "the event from the request" },
    { "format?", "\"auto\"|\"json\"|\"form\"", "the body's format" },
    { "name?", "string", "names the receiver in messages" },
  } },
  { name = "planapi.planfix_events.Options", fields = {
    { "secret_in?", "string", "\"header:Name\", \"field:name\" or \"query:name\"" },
    { "format?", "\"auto\"|\"json\"|\"form\"", "the body's format" },
    { "id?", "string", "the field that names the event" }, { "key?", "string", "the field of the object's key" },
    { "version?", "string", "the field of the object's version" }, { "type?", "string", "the field of the event type" },
    { "task_id?", "string", "the field of the task id" }, { "window?", "number", "seconds a repeat counts as one" },
  } },
  { name = "planapi.planado_webhook.Options", fields = {
    { "previous_key?", "string", "the secret before a rotation, still accepted" },
  } },
}

-- Types of the secondary constructors' options (name -> the options class).
M.RECEIVER_PARENT = "planapi.events.CommonOptions"

M.EVENTS_CLASSES = {
  { name = "planapi.events.Store", doc = "An event store: memory, file or Redis." },
  { name = "planapi.events.Receiver", doc = "Claims each delivery once, answers at once, runs handlers.", funcs = {
    { name = "receive", method = true, params = { { "request", "table" } },
      returns = { { "table", "response" }, { "table?", "event" } } },
    { name = "handle", method = true, params = { { "event", "table" }, { "handler", "fun(event: table): any, any" } },
      returns = { { "boolean?" }, { "planapi.Error?", "err" } } },
    { name = "pending", method = true, params = { { "handler", "fun(event: table): any, any" },
      { "opts?", "{ limit: integer }" } }, returns = { { "integer?", "handled" }, { "planapi.Error?", "err" } },
      doc = "Handles the events whose lease expired (a failed handler, a process that died); call it on a timer." },
    { name = "serve", method = true, params = { { "request", "table" }, { "handler", "fun(event: table): any, any" } },
      returns = { { "table", "response" } } },
  } },
  { name = "planapi.planado_webhook.Hook", parent = "planapi.events.Receiver",
    doc = "A receiver of Planado webhooks.", funcs = {
    { name = "handle", method = true, params = { { "event", "table" }, { "handler", "fun(event: table): any, any" } },
      returns = { { "boolean?" }, { "planapi.Error?", "err" } },
      overloads = { "fun(self: planapi.planado_webhook.Hook, headers: table, body: string): table?, planapi.Error?" },
      doc = "The receiver core's handle; with (headers, body): check and claim a delivery, the event or nil, err." },
    { name = "release", method = true, params = { { "event", "table" } },
      doc = "Handling a fresh event of handle(headers, body) failed: forget the claim." },
  } },
  { name = "planapi.planfix_events.Event", doc = "A Planfix scenario request as an event.", fields = {
    { "id", "string" }, { "key?", "string" }, { "version?", "number" }, { "type?", "string" },
    { "task_id?", "integer|string" }, { "fields", "table", "the request's fields" },
  }, funcs = {
    { name = "fetch", method = true, params = { { "rest", "planapi.planfix_rest.Client" }, { "params?", "table" } },
      returns = { { "table?", "task" }, { "planapi.Error|planapi.Meta", "err" } },
      doc = "The task the event is about, read again over REST." },
  } },
  { name = "planapi.events", funcs = {
    { name = "receiver", params = { { "opts", "planapi.events.ReceiverOptions" } },
      returns = { { "planapi.events.Receiver" } } },
    { name = "memory", params = { { "opts?", "{ max: integer, clock: (fun(): number) }" } },
      returns = { { "planapi.events.Store" } } },
    { name = "file", params = { { "opts", "{ dir: string, retention_days: number, clock: (fun(): number) }" } },
      returns = { { "planapi.events.Store" } } },
    { name = "redis", params = { { "opts", "planapi.events.RedisStoreOptions" } },
      returns = { { "planapi.events.Store" } } },
  } },
  { name = "planapi.events.RedisStoreOptions", fields = {
    { "url?", "string", "redis://host:port/db" }, { "key_prefix?", "string", "\"planapi:events:\"" },
    { "connect?", "function", "the socket (injected in tests, a cosocket inside nginx)" },
    { "timeout?", "number", "seconds" }, { "ttl?", "number", "seconds an id is remembered" },
    { "lease?", "number", "seconds a claimed event is held" },
  } },
  { name = "planapi.webhook_store", doc = "The event stores under their older name.", funcs = {
    { name = "memory", params = { { "opts?", "{ max: integer, clock: (fun(): number) }" } },
      returns = { { "planapi.events.Store" } } },
    { name = "file", params = { { "opts", "{ dir: string, retention_days: number, clock: (fun(): number) }" } },
      returns = { { "planapi.events.Store" } } },
  } },
}


-- Modules of their own (require "planapi.cache"...): each a file of
-- types/library/ with its classes, returning the first.
local ANSWER = "planapi.testing.Answer"
M.MODULE_FILES = {
  { path = "planapi/events/server.lua", classes = {
    { name = "planapi.events.server", doc = "A small HTTP server for event receivers (planapi receive).", funcs = {
      { name = "new", params = { { "opts", "planapi.events.ServerOptions" } },
        returns = { { "planapi.events.Server" } } },
      { name = "parse_listen", params = { { "listen", "string" } },
        returns = { { "string", "host" }, { "integer", "port" } } },
    } },
    { name = "planapi.events.ServerOptions", fields = {
      { "receiver?", "planapi.events.Receiver", "the receiver of every path (or routes)" },
      { "handler?", "fun(event: table): any, any", "runs each claimed event" },
      { "routes?", "table<string, { receiver: planapi.events.Receiver, handler: function }>", "receivers by path" },
      { "listen?", "string", "host:port (127.0.0.1:0)" }, { "read_timeout?", "number", "seconds (5)" },
      { "pending_every?", "number", "seconds between sweeps of pending events (1)" },
      { "log?", "fun(line: string)", "one line a request" }, { "socket?", "table", "LuaSocket (injected in tests)" },
      { "clock?", "fun(): number", "inject time" },
    } },
    { name = "planapi.events.Server", funcs = {
      { name = "address", method = true, returns = { { "string", "host" }, { "integer", "port" } } },
      { name = "step", method = true, params = { { "wait?", "number" } },
        returns = { { "integer", "served" } } },
      { name = "run", method = true,
        params = { { "opts?", "{ max_requests: integer, stop: (fun(): boolean), poll: number }" } } },
      { name = "close", method = true },
    } },
  } },
  -- its classes are the facade's (planapi.cache)
  { path = "planapi/cache.lua", returns = "planapi.cache" },
  { path = "planapi/testing.lua", classes = {
    { name = "planapi.testing", doc = "What a user's tests need: a fake transport, each API's answers, event "
      .. "payloads, scripts in the test's process, cassettes.", fields = {
      { "rest", "planapi.testing.rest", "the Planfix REST answers" }, { "xml", "planapi.testing.xml" },
      { "planado", "planapi.testing.planado" },
    }, funcs = {
      { name = "fake", params = { { "script?", "planapi.testing.FakeOptions" } },
        returns = { { "planapi.testing.Fake" } },
        doc = "A transport answering from a script: answers in order, or handlers by operation." },
      { name = "answer", params = { { "a", "{ status: integer, headers: table, body: string|table, delay: number }" } },
        returns = { { ANSWER } } },
      { name = "failure",
        params = { { "f", "{ message: string, request_sent: boolean, timeout: boolean, kind: string }" } },
        returns = { { ANSWER } }, doc = "The transport failing instead (a reset, a timeout)." },
      { name = "json", params = { { "status", "integer" }, { "body", "any" }, { "headers?", "table" } },
        returns = { { ANSWER } } },
      { name = "planado_delivery", params = { { "d", "table" } }, returns = { { "table", "request" } },
        doc = "The request Planado's webhook sends (secret header, attempt, event_uuid)." },
      { name = "planfix_request", params = { { "r", "table" } }, returns = { { "table", "request" } },
        doc = "A Planfix scenario's HTTP request." },
      { name = "run", params = { { "path", "string" }, { "opts?", "{ args: string[], env: table<string, string>, "
        .. "transport: planapi.testing.Fake|table }" } },
        returns = { { "{ code: integer, stdout: string, stderr: string, error: any }" } },
        doc = "A command-line script in the test's process, its clients on fakes." },
      { name = "record", params = { { "path", "string" }, { "opts?", "{ secrets: string[], mask: boolean }" } },
        returns = { { "planapi.testing.Recorder" } } },
      { name = "replay", params = { { "path", "string" },
        { "opts?", "{ order: \"strict\"|\"any\", reuse: boolean, secrets: string[] }" } },
        returns = { { "planapi.testing.Player" } } },
    } },
    { name = "planapi.testing.Answer", doc = "An answer of the fake: { status, headers, body } or a failure." },
    { name = "planapi.testing.FakeOptions", doc = "The answers in order as the list, or these.", fields = {
      { "answers?", ANSWER .. "[]" }, { "handlers?", "table<string, any>", "operation -> answer, answers or function" },
      { "default?", "any" }, { "start?", "number", "the fake's clock at the start (1000)" },
      { "epoch?", "number", "the wall clock at the start (2026-01-01)" },
      { "latency?", "number", "virtual seconds each request takes" },
    } },
    { name = "planapi.testing.Request", doc = "What the fake recorded of a request, in API terms.", fields = {
      { "api", "string" }, { "operation", "string" }, { "method", "string" }, { "url", "string" },
      { "path", "string" }, { "query", "table" }, { "headers", "table" }, { "body", "any" }, { "params", "table?" },
      { "raw", "string?" }, { "idempotent", "boolean" }, { "at", "number" }, { "answer", "any" },
    } },
    { name = "planapi.testing.Fake", doc = "A fake transport (a callable table): pass it as `transport`.", fields = {
      { "requests", "planapi.testing.Request[]" }, { "slept", "number", "seconds slept in all" },
      { "sleeps", "number[]", "each wait" }, { "clock", "fun(): number" }, { "sleep", "fun(seconds: number)" },
      { "wall_clock", "fun(): number" },
    }, funcs = {
      { name = "now", method = true, returns = { { "number" } } },
      { name = "advance", method = true, params = { { "seconds", "number" } } },
      { name = "count", method = true, params = { { "operation", "string" } }, returns = { { "integer" } } },
      { name = "operations", method = true, returns = { { "string[]" } } },
      { name = "assert_done", method = true, doc = "Raises when scripted answers were never asked for." },
    } },
    { name = "planapi.testing.rest", funcs = {
      { name = "ok", params = { { "fields?", "table" }, { "status?", "integer" } }, returns = { { ANSWER } } },
      { name = "list", params = { { "key", "string" }, { "items", "table[]" }, { "fields?", "table" } },
        returns = { { ANSWER } } },
      { name = "task_list", params = { { "tasks", "table[]" } }, returns = { { ANSWER } } },
      { name = "created", params = { { "id", "integer" } }, returns = { { ANSWER } } },
      { name = "queued", params = { { "fields?", "table" } }, returns = { { ANSWER } } },
      { name = "error", params = { { "e", "{ code: integer, message: string, status: integer }" } },
        returns = { { ANSWER } } },
      { name = "rate_limited", params = { { "e?", "{ retry_after: number }" } }, returns = { { ANSWER } } },
    } },
    { name = "planapi.testing.xml", funcs = {
      { name = "ok", params = { { "children", "table" } }, returns = { { ANSWER } } },
      { name = "list", params = { { "container", "string" }, { "item", "string" }, { "items", "table[]" },
        { "opts?", "{ total: integer }" } }, returns = { { ANSWER } } },
      { name = "login", params = { { "sid", "string" } }, returns = { { ANSWER } } },
      { name = "error", params = { { "code", "string" }, { "message?", "string" } }, returns = { { ANSWER } } },
    } },
    { name = "planapi.testing.planado", funcs = {
      { name = "ok", params = { { "body?", "table" }, { "status?", "integer" } }, returns = { { ANSWER } } },
      { name = "object", params = { { "kind", "string" }, { "fields", "table" } }, returns = { { ANSWER } } },
      { name = "list", params = { { "key", "string" }, { "items", "table[]" } }, returns = { { ANSWER } } },
      { name = "created", params = { { "key", "string" }, { "uuid", "string" } }, returns = { { ANSWER } } },
      { name = "error", params = { { "status", "integer" }, { "message", "string" } }, returns = { { ANSWER } } },
      { name = "rate_limited", params = { { "e?", "{ retry_after: number, text: boolean }" } },
        returns = { { ANSWER } } },
    } },
    { name = "planapi.testing.Recorder", funcs = {
      { name = "wrap", method = true, params = { { "client", "table" } }, returns = { { "table" } },
        doc = "Records the client's exchanges." },
      { name = "transport", method = true, params = { { "inner", "function|planapi.testing.Fake" },
        { "client?", "table" } },
        returns = { { "fun(req: planapi.Request): planapi.Response?, any" } } },
      { name = "save", method = true, returns = RESULT },
    } },
    { name = "planapi.testing.Player", doc = "A replay (a callable table): pass it as `transport`, or wrap a client.",
      fields = {
        { "time", "planapi.testing.Fake", "its time, lent to a client given transport = player" },
        { "clock", "fun(): number" }, { "sleep", "fun(seconds: number)" }, { "wall_clock", "fun(): number" },
      }, funcs = {
      { name = "wrap", method = true, params = { { "client", "table" } }, returns = { { "table" } },
        doc = "Answers the client from the cassette." },
      { name = "transport", method = true, returns = { { "fun(req: planapi.Request): planapi.Response?, any" } } },
      { name = "done", method = true, returns = RESULT, doc = "Every recorded exchange was asked for." },
    } },
  } },
  { path = "planapi/limiter.lua", classes = {
    { name = "planapi.limiter", funcs = {
      { name = "new", params = { { "spec", "string|planapi.Limiter|nil", "\"local\", \"shm:FILE\", \"redis://...\"" },
        { "opts", "planapi.LimiterOptions" } }, returns = { { "planapi.Limiter" } } },
    } },
    { name = "planapi.LimiterOptions", doc = "What a client hands its limiter.", fields = {
      { "key", "string", "the pace's key: the API and the account" }, { "rate", "planapi.Rate" },
      { "endpoint?", "string", "the API's base URL (names the default shared file)" },
      { "fallback?", "\"local\"", "pace locally while Redis is away" },
      { "shared_default?", "boolean", "no spec: the host-wide scope rather than a local one" },
      { "connect?", "function", "the Redis socket (injected in tests)" },
    } },
    { name = "planapi.Limiter", doc = "A pacing scope; a table with these methods is a custom one (option `limiter`).",
      funcs = {
        { name = "reserve", method = true, params = { { "now", "number" } },
          returns = { { "number?", "wait" }, { "planapi.Error?", "err" } } },
        { name = "settle", method = true, params = { { "now", "number" } } },
        { name = "release", method = true, params = { { "now", "number" } } },
        { name = "count", method = true, params = { { "day", "integer" } }, returns = { { "integer?" } } },
        { name = "used", method = true, params = { { "day", "integer" } }, returns = { { "integer?" } } },
      } },
  } },
}

return M
