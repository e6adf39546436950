/* json_bridge.c: libFuzzer target for the JSON bridge (src/json.c):
 * core.json_decode (a private lua-cjson instance plus the pass that turns
 * integral floats into integers) and core.json_encode (ours: sorted keys,
 * planapi.null, planapi.array, 64-bit integers, errors naming a path).
 *
 * Each input is used twice.
 *  1. As JSON text: v1 = json_decode(input); s = json_encode(v1);
 *     v2 = json_decode(s), both with nulls = "keep". Oracle: v2 deep-equals v1 (types, integer or
 *     float subtype, values, planapi.null, core.is_array) and
 *     json_encode(v2) == s. json_encode may refuse v1 only for the reasons
 *     a JSON text can carry and ours cannot send: a string that is not
 *     UTF-8, a number that overflowed to infinity, nesting deeper than 100.
 *     The default decode (nulls left out, most "name":null members blanked
 *     from the text before cjson reads it) must agree: it fails exactly
 *     when the kept decode does, with the same message, and else gives v1
 *     with its null members left out.
 *     Then, as lua/planapi/planfix_rest/init.lua does with an error body, an
 *     error object is built from the decoded code/status/error fields and
 *     tostring() of it must be one line.
 *  2. As generator bytes (common.h) for a Lua value: objects, arrays marked
 *     with planapi.array (empty ones too), plain sequences, planapi.null,
 *     integers, floats of any bit pattern, strings with escapes, control
 *     characters and invalid UTF-8, tables with holes, mixed or non-string
 *     keys, nesting around the depth limit, values with no JSON form.
 *     Oracle: either a raised planapi "config" error, or a text that is
 *     valid UTF-8 with no raw control character and that decodes back to
 *     the same value (integral floats below 2^53 as integers, every array
 *     marked as one, integers beyond 2^53 to the nearest double, which
 *     is what cjson reads). */
#include <string.h>

#include "common.h"

static const char oracle[] =
  "local core = ...\n"
  "local null, array_mt = core.null, core.array_mt\n"
  "local function fail(fmt, ...) error(('ORACLE: ' .. fmt):format(...), 2) end\n"
  "local function check_text(s)\n"
  "  if type(s) ~= 'string' then fail('json_encode returned a %s', type(s)) end\n"
  "  if utf8.len(s) == nil then fail('json_encode produced invalid UTF-8: %q', s) end\n"
  "  if s:find('[%z\\1-\\31]') then fail('json_encode produced a raw control character: %q', s) end\n"
  "end\n"
  "local function same(a, b, path)\n"
  "  if type(a) ~= type(b) then fail('%s: %s became %s', path, type(a), type(b)) end\n"
  "  if type(a) == 'number' then\n"
  "    if math.type(a) ~= math.type(b) or a ~= b then\n"
  "      fail('%s: %s %.17g became %s %.17g', path, math.type(a), a, math.type(b), b)\n"
  "    end\n"
  "  elseif type(a) == 'table' then\n"
  "    if core.is_array(a) ~= core.is_array(b) then fail('%s: array-ness changed', path) end\n"
  "    for k, x in pairs(a) do same(x, b[k], path .. '.' .. tostring(k)) end\n"
  "    for k in pairs(b) do if a[k] == nil then fail('%s: key %s appeared', path, tostring(k)) end end\n"
  "  elseif a ~= b then\n"
  "    fail('%s: %q became %q', path, tostring(a), tostring(b))\n"
  "  end\n"
  "end\n"
  "local refusals = { 'not valid UTF%-8', 'NaN and infinity', 'nested too deep' }\n"
  "local function refused(err)\n"
  "  if not core.is_error(err) or err.kind ~= 'config' then return false end\n"
  "  for _, r in ipairs(refusals) do if err.message:find(r) then return true end end\n"
  "  return false\n"
  "end\n"
  "local function error_from(body)\n"
  "  local code = tonumber(body.code)\n"
  "  if code then code = math.floor(code) end\n"
  "  local message = type(body.error) == 'string' and body.error or 'request failed'\n"
  "  local ok, e = pcall(core.error, { kind = 'api', message = message, code = code,\n"
  "    status = tonumber(body.status), retry_after = tonumber(body.retry_after), operation = body.operation })\n"
  "  if not ok then\n"
  "    if not core.is_error(e) then fail('core.error raised %s', tostring(e)) end\n"
  "    return\n"
  "  end\n"
  "  local line = tostring(e)\n"
  "  if type(line) ~= 'string' or line:find('[\\r\\n]') then fail('tostring(error) is not one line: %q', tostring(line)) end\n"
  "end\n"
  "local function without_nulls(v)\n"
  "  if type(v) ~= 'table' then return v end\n"
  "  local out, arr = setmetatable({}, getmetatable(v)), core.is_array(v)\n"
  "  for k, x in pairs(v) do if arr or x ~= null then out[k] = without_nulls(x) end end\n"
  "  return out\n"
  "end\n"
  "local function absent_agrees(s, v1, err)\n"
  "  local a, aerr = core.json_decode(s)\n"
  "  if (a == nil) ~= (v1 == nil) then fail('nulls absent and keep disagree on whether %q decodes', s) end\n"
  "  if a == nil then\n"
  "    if aerr.message ~= err.message then fail('nulls absent and keep differ: %q, %q', aerr.message, err.message) end\n"
  "    return\n"
  "  end\n"
  "  same(without_nulls(v1), a, 'absent')\n"
  "end\n"
  "local function bridge(s)\n"
  "  local v1, err = core.json_decode(s, 'keep')\n"
  "  absent_agrees(s, v1, err)\n"
  "  if v1 == nil then\n"
  "    if not core.is_error(err) or err.kind ~= 'decode' then fail('json_decode failed without a decode error') end\n"
  "    return\n"
  "  end\n"
  "  if type(v1) == 'table' then error_from(v1) end\n"
  "  local ok, s2 = pcall(core.json_encode, v1)\n"
  "  if not ok then\n"
  "    if not refused(s2) then fail('json_encode refused a decoded value: %s', tostring(s2)) end\n"
  "    return\n"
  "  end\n"
  "  check_text(s2)\n"
  "  local v2, err2 = core.json_decode(s2, 'keep')\n"
  "  if v2 == nil then fail('our own JSON does not decode: %s\\n%s', tostring(err2), s2) end\n"
  "  same(v1, v2, 'json')\n"
  "  local s3 = core.json_encode(v2)\n"
  "  if s3 ~= s2 then fail('encoding is not stable: %q then %q', s2, s3) end\n"
  "end\n"
  "local function expect(v, d, path)\n"
  "  local t = type(v)\n"
  "  if t == 'number' then\n"
  "    if math.type(v) == 'integer' then\n"
  "      if v > -2^53 and v < 2^53 then\n"
  "        if math.type(d) ~= 'integer' or d ~= v then fail('%s: %d became %s', path, v, tostring(d)) end\n"
  "      elseif type(d) ~= 'number' or d ~= v + 0.0 then\n"
  "        fail('%s: %d became %s', path, v, tostring(d))\n"
  "      end\n"
  "    else\n"
  "      local i = math.tointeger(v)\n"
  "      if i and v > -2^53 and v < 2^53 then\n"
  "        if math.type(d) ~= 'integer' or d ~= i then fail('%s: %.17g became %s', path, v, tostring(d)) end\n"
  "      elseif math.type(d) ~= 'float' or d ~= v then\n"
  "        fail('%s: %.17g became %s', path, v, tostring(d))\n"
  "      end\n"
  "    end\n"
  "  elseif t == 'table' then\n"
  "    if type(d) ~= 'table' then fail('%s: a table became %s', path, tostring(d)) end\n"
  "    local n = 0\n"
  "    if getmetatable(v) == array_mt then\n"
  "      for i = 1, rawlen(v) do expect(v[i], d[i], path .. '[' .. i .. ']') end\n"
  "      n = rawlen(v)\n"
  "    else\n"
  "      for k, x in pairs(v) do expect(x, d[k], path .. '.' .. tostring(k)) n = n + 1 end\n"
  "    end\n"
  "    local m = 0\n"
  "    for _ in pairs(d) do m = m + 1 end\n"
  "    if m ~= n then fail('%s: %d keys became %d', path, n, m) end\n"
  "  elseif t == 'nil' then\n"
  "    if d ~= null then fail('%s: nil became %s', path, tostring(d)) end\n"
  "  elseif d ~= v then\n"
  "    fail('%s: %q became %q', path, tostring(v), tostring(d))\n"
  "  end\n"
  "end\n"
  "local function generated(g)\n"
  "  local ok, s = pcall(core.json_encode, g)\n"
  "  if not ok then\n"
  "    if not core.is_error(s) or s.kind ~= 'config' then fail('json_encode raised %s', tostring(s)) end\n"
  "    return\n"
  "  end\n"
  "  check_text(s)\n"
  "  local d, err = core.json_decode(s, 'keep')\n"
  "  if d == nil then fail('our own JSON does not decode: %s\\n%s', tostring(err), s) end\n"
  "  expect(g, d, 'value')\n"
  "end\n"
  "return function(s, g)\n"
  "  bridge(s)\n"
  "  generated(g)\n"
  "end\n";

static int check;

static const char *const texts[] = {
  "", " ", "a", "id", "name", "status", "external_id", "\"", "\\", "/", "\\u0000", "\b", "\f", "\n", "\r",
  "\t", "\x01", "\x1f", "\x7f", "\xc2\x80", "\xe2\x80\xa8", "\xe2\x80\xa9", "\xef\xbb\xbf", "\xef\xbf\xbf",
  "\xf0\x9f\x98\x80", "Привет", "\xff", "\xc3\x28", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
  "null", "[]", "{}", "1e400", "-0",
};
#define NTEXTS (sizeof texts / sizeof texts[0])

static void gen_string(fz_bytes *b, lua_State *L) {
  if (fz_bool(b)) {
    size_t len;
    const char *s = fz_take(b, 24, &len);
    lua_pushlstring(L, s, len);
  } else {
    unsigned n = 1 + fz_below(b, 3), i;
    luaL_Buffer lb;
    luaL_buffinit(L, &lb);
    for (i = 0; i < n; i++) luaL_addstring(&lb, texts[fz_below(b, NTEXTS)]);
    luaL_pushresult(&lb);
  }
}

static void gen_value(fz_bytes *b, lua_State *L, int depth);

static void mark_array(lua_State *L) {
  luaL_setmetatable(L, "planapi.array");
}

static void gen_items(fz_bytes *b, lua_State *L, int depth, unsigned n) {
  unsigned i;
  lua_createtable(L, (int)n, 0);
  for (i = 1; i <= n; i++) {
    gen_value(b, L, depth + 1);
    lua_rawseti(L, -2, i);
  }
}

static void gen_value(fz_bytes *b, lua_State *L, int depth) {
  unsigned kind = fz_below(b, depth >= 6 ? 6 : 16);
  luaL_checkstack(L, 8, "generator");
  switch (kind) {
    case 0: case 1: gen_string(b, L); break;
    case 2: {
      uint64_t v = fz_u64(b);
      switch (fz_below(b, 3)) {
        case 0: lua_pushinteger(L, (lua_Integer)v); break;
        case 1: lua_pushinteger(L, (lua_Integer)(int16_t)v); break;
        default: /* around 2^53 */
          lua_pushinteger(L, (lua_Integer)((v & 1 ? -1 : 1) * ((int64_t)1 << 53) + (int8_t)(v >> 8)));
      }
      break;
    }
    case 3: {
      uint64_t bits = fz_u64(b);
      double d;
      memcpy(&d, &bits, sizeof d);
      if (fz_bool(b)) d = (double)(int32_t)bits + (bits >> 40 & 1 ? 0.5 : 0.0);
      lua_pushnumber(L, d);
      break;
    }
    case 4: lua_pushboolean(L, fz_bool(b)); break;
    case 5: lua_pushlightuserdata(L, NULL); break; /* planapi.null */
    case 6: case 7: { /* an object */
      unsigned n = fz_below(b, 5), i;
      lua_createtable(L, 0, (int)n);
      for (i = 0; i < n && b->left > 0; i++) {
        gen_string(b, L);
        gen_value(b, L, depth + 1);
        lua_rawset(L, -3);
      }
      break;
    }
    case 8: /* planapi.array, maybe empty */
      gen_items(b, L, depth, fz_below(b, 4));
      mark_array(L);
      break;
    case 9: /* a plain sequence */
      gen_items(b, L, depth, 1 + fz_below(b, 4));
      break;
    case 10: lua_newtable(L); break;
    case 11: { /* a table with a hole, marked or not */
      gen_items(b, L, depth, 3);
      lua_pushnil(L);
      lua_rawseti(L, -2, 1 + fz_below(b, 3));
      if (fz_bool(b)) mark_array(L);
      break;
    }
    case 12: { /* one key that is not a positive integer or a string */
      lua_newtable(L);
      switch (fz_below(b, 4)) {
        case 0: lua_pushnumber(L, 1.5); break;
        case 1: lua_pushinteger(L, 0); break;
        case 2: lua_pushinteger(L, -1); break;
        default: lua_pushboolean(L, 1);
      }
      gen_value(b, L, depth + 1);
      lua_rawset(L, -3);
      break;
    }
    case 13: /* array items and string keys */
      gen_items(b, L, depth, 1 + fz_below(b, 2));
      gen_value(b, L, depth + 1);
      lua_setfield(L, -2, "k");
      break;
    case 14: { /* a chain around the encoder's depth limit of 100 */
      unsigned n = 95 + fz_below(b, 10), i;
      int marked = fz_bool(b);
      gen_string(b, L);
      for (i = 0; i < n; i++) {
        lua_createtable(L, 1, 0);
        lua_insert(L, -2);
        lua_rawseti(L, -2, 1);
        if (marked) mark_array(L);
      }
      break;
    }
    default: /* no JSON form */
      if (fz_bool(b)) lua_pushcfunction(L, luaopen_base);
      else lua_newuserdatauv(L, 8, 0);
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  lua_State *L = fz_state();
  (void)argc, (void)argv;
  check = fz_chunk(L, "=json_bridge oracle", oracle);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fz_state();
  fz_bytes b = { data, size };
  lua_pushlstring(L, (const char *)data, size);
  gen_value(&b, L, 0);
  fz_call_or_abort(L, check, 2, "json_bridge");
  fz_done(L);
  return 0;
}
