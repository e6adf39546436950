/* webhook.c: libFuzzer target for the Planado webhook receiver
 * (lua/planapi/planado/webhook.lua with the memory store of
 * lua/planapi/webhook_store.lua; the C underneath: json_decode,
 * secure_equals, error objects).
 *
 * The module is loaded once; each input gets a new receiver (secret
 * SECRET, a memory store), so that a crash reproduces from its input
 * alone. The input is a sequence of deliveries separated by "\n===\n"
 * (at most 8). Each delivery is one control byte, then header lines
 * "Name: value" up to an empty line, then the body. The control byte:
 *   bits 0-1  0: X-Planado-Secret is SECRET, 1: a wrong secret (SECRET with
 *             a byte changed, or cut, or longer), 2: x-planado-secret (any
 *             case is valid) is SECRET, 3: only what the header lines say
 *   bit 2     the secret's value is given as a one-item list
 *   bit 3     also deliver it again right after (a retry)
 *   bit 4     release a fresh event after handling (its handling "failed")
 *
 * Oracle, per delivery: hook:handle(headers, body) never raises; it gives
 * either an event and no error, or nil and a planapi error whose answer is
 * a number (400, 401 or 413). When no X-Planado-Secret header (any letter
 * case) carries SECRET, it is an "auth" error with answer 401, never an
 * event; when they all carry SECRET it is never 401. An event has answer
 * 200, string type and uuid, exactly one of fresh, duplicate, stale, a
 * version that is tonumber(resource.version), and the claim a model of the
 * store predicts: a uuid seen before is a duplicate; otherwise a version
 * not above the last fresh one of the same resource is stale; otherwise it
 * is fresh. A retry of a fresh event is a duplicate; after hook:release a
 * retry is fresh again. */
#include "common.h"

static const char oracle[] =
  "local core = ...\n"
  "local Hook = require 'planapi.planado.webhook'\n"
  "local stores = require 'planapi.webhook_store'\n"
  "local SECRET = 'whsec-fuzz-0123456789'\n"
  "local function fail(fmt, ...) error(('ORACLE: ' .. fmt):format(...), 2) end\n"
  "local function wrong_secret(c)\n"
  "  local k = c % 3\n"
  "  if k == 0 then return SECRET:sub(1, -2) .. string.char(SECRET:byte(-1) ~ 1) end\n"
  "  if k == 1 then return SECRET:sub(1, c % #SECRET) end\n"
  "  return SECRET .. 'x'\n"
  "end\n"
  "local function parse(rec)\n"
  "  local c = rec:byte(1) or 0\n"
  "  rec = rec:sub(2)\n"
  "  local head, body = rec:match('^(.-)\\r?\\n\\r?\\n(.*)$')\n"
  "  if not head then head, body = '', rec end\n"
  "  local headers = {}\n"
  "  for line in head:gmatch('[^\\n]+') do\n"
  "    local k, v = line:match('^([^:]+):[ \\t]*(.-)\\r?$')\n"
  "    if k then headers[k] = v end\n"
  "  end\n"
  "  local mode, value = c & 3, nil\n"
  "  if mode == 0 or mode == 2 then value = SECRET elseif mode == 1 then value = wrong_secret(c >> 2) end\n"
  "  if value and c & 4 ~= 0 then value = { value } end\n"
  "  if mode == 0 or mode == 1 then headers['X-Planado-Secret'] = value\n"
  "  elseif mode == 2 then headers['x-planado-secret'] = value end\n"
  "  return headers, body, c & 8 ~= 0, c & 16 ~= 0\n"
  "end\n"
  /* what the receiver may decide about the secret: 'right', 'wrong' or 'either' */
  "local function secret_of(headers)\n"
  "  local right, wrong = 0, 0\n"
  "  for k, v in pairs(headers) do\n"
  "    if type(k) == 'string' and k:lower() == 'x-planado-secret' then\n"
  "      if type(v) == 'table' then v = v[1] end\n"
  "      if v == SECRET then right = right + 1 else wrong = wrong + 1 end\n"
  "    end\n"
  "  end\n"
  "  if right > 0 and wrong == 0 then return 'right' end\n"
  "  if right == 0 then return 'wrong' end\n"
  "  return 'either'\n"
  "end\n"
  "local function deliver(hook, headers, body)\n"
  "  local ok, ev, err = pcall(hook.handle, hook, headers, body)\n"
  "  if not ok then fail('hook:handle raised: %s', tostring(ev)) end\n"
  "  local secret = secret_of(headers)\n"
  "  if ev == nil then\n"
  "    if not core.is_error(err) then fail('nil without an error: %s', tostring(err)) end\n"
  "    if math.type(err.answer) ~= 'integer' then fail('err.answer is %s', tostring(err.answer)) end\n"
  "    if err.answer ~= 400 and err.answer ~= 401 and err.answer ~= 413 then fail('answer %d', err.answer) end\n"
  "    if secret == 'wrong' and (err.answer ~= 401 or err.kind ~= 'auth') then\n"
  "      fail('a wrong secret gave %s', tostring(err))\n"
  "    end\n"
  "    if secret == 'right' and err.answer == 401 then fail('the right secret was refused') end\n"
  "    if tostring(err):find(SECRET, 1, true) then fail('the secret is in an error message') end\n"
  "    return nil\n"
  "  end\n"
  "  if err ~= nil then fail('an event and an error') end\n"
  "  if secret == 'wrong' then fail('an event with a wrong secret') end\n"
  "  if ev.answer ~= 200 then fail('event answer %s', tostring(ev.answer)) end\n"
  "  if type(ev.type) ~= 'string' or type(ev.uuid) ~= 'string' then fail('event type or uuid is not a string') end\n"
  "  local n = (ev.fresh and 1 or 0) + (ev.duplicate and 1 or 0) + (ev.stale and 1 or 0)\n"
  "  if n ~= 1 then fail('%d of fresh, duplicate, stale', n) end\n"
  "  -- a version that is no finite number counts as none (README, Events in)\n"
  "  local want = ev.resource ~= nil and tonumber(ev.resource.version) or nil\n"
  "  if want ~= nil and (want ~= want or want == math.huge or want == -math.huge) then want = nil end\n"
  "  if ev.resource ~= nil and ev.version ~= want then\n"
  "    fail('version %s of resource version %s', tostring(ev.version), tostring(ev.resource.version))\n"
  "  end\n"
  "  if type(ev.key) ~= 'string' then fail('event key is a %s', type(ev.key)) end\n"
  "  return ev\n"
  "end\n"
  "return function(data)\n"
  "  local hook = Hook.new { secret = SECRET, store = stores.memory { max = 64 } }\n"
  "  local seen, last = {}, {}\n"
  "  local function expect(ev)\n"
  "    local want\n"
  "    if seen[ev.uuid] then want = 'duplicate'\n"
  "    elseif ev.version ~= nil and last[ev.key] ~= nil and ev.version <= last[ev.key] then want = 'stale'\n"
  "    else want = 'fresh' end\n"
  "    if not ev[want] then fail('event %q version %s: expected %s', ev.uuid, tostring(ev.version), want) end\n"
  "    seen[ev.uuid] = true\n"
  "    if want == 'fresh' and ev.version ~= nil then last[ev.key] = ev.version end\n"
  "  end\n"
  "  local count, pos = 0, 1\n"
  "  while pos <= #data + 1 and count < 8 do\n"
  "    local stop = data:find('\\n===\\n', pos, true)\n"
  "    local rec = data:sub(pos, (stop or #data + 1) - 1)\n"
  "    pos = stop and stop + 5 or #data + 2\n"
  "    count = count + 1\n"
  "    local headers, body, again, release = parse(rec)\n"
  "    local ev = deliver(hook, headers, body)\n"
  "    if ev then\n"
  "      expect(ev)\n"
  "      if again then\n"
  "        local ev2 = deliver(hook, headers, body)\n"
  "        if not ev2 then fail('a retry of an accepted event was refused') end\n"
  "        if not ev2.duplicate then fail('a retry of event %q was not a duplicate', ev.uuid) end\n"
  "      end\n"
  "      if release and ev.fresh then\n"
  "        hook:release(ev)\n"
  "        seen[ev.uuid] = nil\n"
  "        last[ev.key] = ev.previous_version\n"
  "        local ev3 = deliver(hook, headers, body)\n"
  "        if not (ev3 and ev3.fresh) then fail('a released event %q was not fresh again', ev.uuid) end\n"
  "        expect(ev3)\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "end\n";

static int check;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  lua_State *L = fz_state();
  (void)argc, (void)argv;
  check = fz_chunk(L, "=webhook oracle", oracle);
  fz_lua_coverage(L);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fz_feed_bytes(check, data, size, "webhook");
}
