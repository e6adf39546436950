/* xml_encode_sign.c: libFuzzer target for core.xml_encode (src/xml_encode.c)
 * and the request signature (src/sign.c), with a round-trip oracle.
 *
 * The input bytes drive a generator (FuzzedDataProvider style, common.h)
 * that builds a method name, a private key and a params table: nested
 * tables, arrays, "@attr" and "#text" keys, strings with XML special
 * characters, control characters, invalid UTF-8 and U+FFFE, integers,
 * floats of any bit pattern, booleans, planapi.null, bad keys.
 *
 * Oracle, when core.xml_encode(method, params) succeeds:
 *   - core.xml_decode of the result succeeds and gives back every value
 *     exactly: strings byte for byte, integers and booleans as the encoder
 *     writes them, floats to the same number, null and {} as "", arrays as
 *     repeated elements, attributes, "#text", list containers (@count);
 *   - core.xml_sign_string equals an independent Lua reading of the
 *     signature rules (Planfix's XML API documentation) over the params table;
 *   - core.xml_signature(xml, key) == md5_hex(sign_string .. key), and
 *     core.xml_encode(method, params, key) is the unsigned document with
 *     <signature> inserted before </request>.
 * When it fails, the failure is a raised planapi "config" error. */
#include <string.h>

#include "common.h"

static const char oracle[] =
  "local core = ...\n"
  "local null = core.null\n"
  "local debug = os.getenv('FZ_DEBUG') ~= nil -- FZ_DEBUG=1: show what each input became\n"
  "local function fail(fmt, ...) error(('ORACLE: ' .. fmt):format(...), 2) end\n"
  "local function sorted_keys(t)\n"
  "  local ks = {}\n"
  "  for k in pairs(t) do ks[#ks + 1] = k end\n"
  "  table.sort(ks)\n"
  "  return ks\n"
  "end\n"
  /* the encoder's notion of an array: rawlen n > 0 and exactly n keys */
  "local function is_array(t)\n"
  "  if type(t) ~= 'table' then return false end\n"
  "  local n, c = rawlen(t), 0\n"
  "  if n == 0 then return false end\n"
  "  for _ in pairs(t) do c = c + 1 end\n"
  "  return c == n\n"
  "end\n"
  /* the text the encoder writes for a scalar; nil for null */
  "local function text(v)\n"
  "  if type(v) == 'string' then return v end\n"
  "  if type(v) == 'boolean' then return v and '1' or '0' end\n"
  "  if math.type(v) == 'integer' then return ('%d'):format(v) end\n"
  "  if type(v) == 'number' then\n"
  "    local i = math.tointeger(v)\n"
  "    if i then return ('%d'):format(i) end\n"
  "    return ('%.17g'):format(v)\n"
  "  end\n"
  "  if v == null then return nil end\n"
  "  fail('text of a %s', type(v))\n"
  "end\n"
  "local function blank(s) return s:find('^[ \\t\\n\\r]*$') ~= nil end\n"
  "local function parts(t)\n"
  "  local attrs, kids, has_text = {}, {}, false\n"
  "  for _, k in ipairs(sorted_keys(t)) do\n"
  "    local c = k:sub(1, 1)\n"
  "    if c == '@' then attrs[#attrs + 1] = k\n"
  "    elseif k == '#text' then has_text = true\n"
  "    elseif c ~= '#' then kids[#kids + 1] = k end\n"
  "  end\n"
  "  return attrs, kids, has_text\n"
  "end\n"
  /* the elements one key gives: an array repeats it */
  "local function items(v)\n"
  "  if is_array(v) then return v end\n"
  "  return { v }\n"
  "end\n"
  "local expect\n"
  /* d is the decoded value of one element whose value was v */
  "local function expect_children(v, d, path, extra)\n"
  "  local attrs, kids, has_text = parts(v)\n"
  "  local container = v['@count'] ~= nil or v['@totalCount'] ~= nil\n"
  "  if #attrs == 0 and #kids == 0 and not container and not extra then\n"
  "    local tx = has_text and text(v['#text']) or ''\n"
  "    if d ~= (tx or '') then fail('%s: text %q came back as %q', path, tx or '', tostring(d)) end\n"
  "    return\n"
  "  end\n"
  "  if type(d) ~= 'table' then fail('%s: expected a table, got %s', path, tostring(d)) end\n"
  "  local seen = 0\n"
  "  if extra then\n"
  "    for k, x in pairs(extra) do\n"
  "      if d[k] ~= x then fail('%s: %s is %q, not %q', path, k, tostring(d[k]), x) end\n"
  "      seen = seen + 1\n"
  "    end\n"
  "  end\n"
  "  for _, a in ipairs(attrs) do\n"
  "    local want = text(v[a]) or ''\n"
  "    if d[a] ~= want then fail('%s: attribute %s %q came back as %q', path, a, want, tostring(d[a])) end\n"
  "    seen = seen + 1\n"
  "  end\n"
  "  if container then\n"
  "    local i = 0\n"
  "    for _, k in ipairs(kids) do\n"
  "      for _, item in ipairs(items(v[k])) do\n"
  "        i = i + 1\n"
  "        expect(item, d[i], path .. '.' .. k)\n"
  "      end\n"
  "    end\n"
  "    seen = seen + i\n"
  "  else\n"
  "    local tx = has_text and text(v['#text']) or nil\n"
  "    if tx and tx ~= '' and (#kids == 0 or not blank(tx)) then\n"
  "      if d['#text'] ~= tx then fail('%s: #text %q came back as %q', path, tx, tostring(d['#text'])) end\n"
  "      seen = seen + 1\n"
  "    end\n"
  "    for _, k in ipairs(kids) do\n"
  "      local list = items(v[k])\n"
  "      if #list == 1 then\n"
  "        expect(list[1], d[k], path .. '.' .. k)\n"
  "      else\n"
  "        if type(d[k]) ~= 'table' or #d[k] ~= #list then fail('%s.%s: %d items did not come back as an array', path, k, #list) end\n"
  "        for i, item in ipairs(list) do expect(item, d[k][i], path .. '.' .. k .. '[' .. i .. ']') end\n"
  "      end\n"
  "      seen = seen + 1\n"
  "    end\n"
  "  end\n"
  "  local n = 0\n"
  "  for _ in pairs(d) do n = n + 1 end\n"
  "  if n ~= seen then fail('%s: decoded %d keys, expected %d', path, n, seen) end\n"
  "end\n"
  "expect = function(v, d, path)\n"
  "  if type(v) == 'table' and next(v) ~= nil then return expect_children(v, d, path) end\n"
  "  local want = type(v) == 'table' and '' or (text(v) or '')\n"
  "  if type(v) == 'number' and math.type(v) == 'float' and not math.tointeger(v) then\n"
  "    if type(d) ~= 'string' or tonumber(d) ~= v then fail('%s: %.17g came back as %s', path, v, tostring(d)) end\n"
  "  end\n"
  "  if d ~= want then fail('%s: %q came back as %q', path, want, tostring(d)) end\n"
  "end\n"
  /* the signature string, read from the table (the documented signature) */
  "local function flatten(v, out)\n"
  "  if type(v) == 'table' and next(v) ~= nil then\n"
  "    local attrs, kids, has_text = parts(v)\n"
  "    if #kids > 0 then\n"
  "      for _, a in ipairs(attrs) do out[#out + 1] = text(v[a]) or '' end\n"
  "      for _, k in ipairs(kids) do\n"
  "        for _, item in ipairs(items(v[k])) do flatten(item, out) end\n"
  "      end\n"
  "    else\n"
  "      local tx = has_text and text(v['#text']) or ''\n"
  "      if not blank(tx or '') then out[#out + 1] = tx\n"
  "      else for _, a in ipairs(attrs) do out[#out + 1] = text(v[a]) or '' end end\n"
  "    end\n"
  "  elseif type(v) ~= 'table' then\n"
  "    local tx = text(v) or ''\n"
  "    if not blank(tx) then out[#out + 1] = tx end\n"
  "  end\n"
  "end\n"
  "local function sign_string(method, params)\n"
  "  local out = { method }\n"
  "  for _, k in ipairs(sorted_keys(params)) do\n"
  "    if k ~= 'signature' then\n"
  "      for _, item in ipairs(items(params[k])) do flatten(item, out) end\n"
  "    end\n"
  "  end\n"
  "  return table.concat(out)\n"
  "end\n"
  "return function(method, params, key)\n"
  "  local ok, xml = pcall(core.xml_encode, method, params)\n"
  "  if debug then io.stderr:write(('xml_encode(%q) -> %s\\n'):format(method, tostring(xml))) end\n"
  "  if not ok then\n"
  "    if not core.is_error(xml) or xml.kind ~= 'config' then\n"
  "      fail('xml_encode raised something else than a config error: %s', tostring(xml))\n"
  "    end\n"
  "    return\n"
  "  end\n"
  "  if type(xml) ~= 'string' or xml:sub(-10) ~= '</request>' then fail('xml_encode returned %s', tostring(xml)) end\n"
  "  local doc, err = core.xml_decode(xml)\n"
  "  if doc == nil then fail('the encoded request does not decode: %s\\n%s', tostring(err), xml) end\n"
  "  expect_children(params, doc, 'request', { ['@method'] = method })\n"
  "  local ok2, s = pcall(core.xml_sign_string, xml)\n"
  "  if not ok2 then fail('xml_sign_string failed on an encoded request: %s\\n%s', tostring(s), xml) end\n"
  "  local want = sign_string(method, params)\n"
  "  if s ~= want then fail('sign string %q, expected %q\\n%s', s, want, xml) end\n"
  "  local sig = core.xml_signature(xml, key)\n"
  "  if sig ~= core.md5_hex(s .. key) or not sig:find('^[0-9a-f]+$') or #sig ~= 32 then\n"
  "    fail('signature %s is not md5(sign string .. key)', sig)\n"
  "  end\n"
  "  local signed = core.xml_encode(method, params, key)\n"
  "  if signed ~= xml:sub(1, -11) .. '<signature>' .. sig .. '</signature></request>' then\n"
  "    fail('the signed request differs from the unsigned one plus its signature')\n"
  "  end\n"
  "end\n";

static int check;

/* Strings that matter to an XML encoder, combined and cut by the input. */
static const char *const texts[] = {
  "", " ", "  \n\t ", "acme", "task.getList", "<", ">", "&", "\"", "'", "]]>", "&amp;", "&#13;",
  "<![CDATA[x]]>", "\r", "\n", "\r\n", "\t", "\x01", "\x1f", "\x7f", "\0",
  "Привет", "Замена фильтра", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
  "\xef\xbf\xbd", "\xef\xbf\xbe", "\xef\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80",
  "\xff", "\xc3\x28", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82",
  "0005", "-0", "1e5", "16-02-2018 23:55", "<request method=\"x\">", "</request>",
};
#define NTEXTS (sizeof texts / sizeof texts[0])
#define NUL_TEXT 21 /* texts[21], "\0", stands for one NUL byte */

static const char *const names[] = {
  "id", "task", "title", "description", "account", "sid", "pageCurrent", "pageSize", "user", "users",
  "group", "groups", "customData", "customValue", "value", "files", "file", "signature", "silent",
  "a", "b", "_", "a1", "a-b", "a.b", "Id", "ID", "xml", "xmlns", "XmlThing", "1a", "-a", ".a", "a b",
  "a:b", "", "@", "#", "\xd0\xb8\xd0\xb4", "count", "totalCount",
};
#define NNAMES (sizeof names / sizeof names[0])

static void gen_text(fz_bytes *b, lua_State *L) {
  luaL_Buffer lb;
  unsigned n, i;
  switch (fz_below(b, 4)) {
    case 0: {
      size_t len;
      const char *s = fz_take(b, 40, &len);
      lua_pushlstring(L, s, len);
      return;
    }
    case 1:
      lua_pushstring(L, texts[fz_below(b, NTEXTS)]);
      return;
    default:
      n = 1 + fz_below(b, 4);
      luaL_buffinit(L, &lb);
      for (i = 0; i < n; i++) {
        unsigned k = fz_below(b, NTEXTS);
        if (k == NUL_TEXT) luaL_addchar(&lb, '\0');
        else luaL_addstring(&lb, texts[k]);
      }
      luaL_pushresult(&lb);
  }
}

static void gen_key(fz_bytes *b, lua_State *L) {
  unsigned k = fz_below(b, 10);
  if (k < 5) {
    lua_pushstring(L, names[fz_below(b, NNAMES)]);
  } else if (k < 7) {
    lua_pushfstring(L, "@%s", names[fz_below(b, NNAMES)]);
  } else if (k == 7) {
    lua_pushstring(L, fz_bool(b) ? "#text" : "#comment");
  } else if (k == 8) {
    size_t len;
    const char *s = fz_take(b, 12, &len);
    lua_pushlstring(L, s, len);
  } else {
    /* not a string: integer (mixes with array items), float or boolean */
    switch (fz_below(b, 3)) {
      case 0: lua_pushinteger(L, (lua_Integer)fz_below(b, 4)); break;
      case 1: lua_pushnumber(L, 1.5); break;
      default: lua_pushboolean(L, 1);
    }
  }
}

static void gen_value(fz_bytes *b, lua_State *L, int depth);

static void gen_table(fz_bytes *b, lua_State *L, int depth) {
  unsigned n = fz_below(b, 6), i;
  lua_createtable(L, 0, (int)n);
  for (i = 0; i < n && b->left > 0; i++) {
    gen_key(b, L);
    gen_value(b, L, depth + 1);
    lua_rawset(L, -3);
  }
}

static void gen_value(fz_bytes *b, lua_State *L, int depth) {
  unsigned kind = fz_below(b, depth >= 8 ? 7 : 12);
  luaL_checkstack(L, 8, "generator");
  switch (kind) {
    case 0: case 1: case 2: gen_text(b, L); break;
    case 3: {
      uint64_t v = fz_u64(b);
      if (fz_bool(b)) lua_pushinteger(L, (lua_Integer)v);
      else lua_pushinteger(L, (lua_Integer)(int8_t)v);
      break;
    }
    case 4: {
      uint64_t bits = fz_u64(b);
      double d;
      memcpy(&d, &bits, sizeof d);
      lua_pushnumber(L, d);
      break;
    }
    case 5: lua_pushboolean(L, fz_bool(b)); break;
    case 6: lua_pushlightuserdata(L, NULL); break; /* planapi.null */
    case 7: case 8: gen_table(b, L, depth); break;
    case 9: { /* an array: repeated elements */
      unsigned n = 1 + fz_below(b, 4), i;
      lua_createtable(L, (int)n, 0);
      for (i = 1; i <= n; i++) {
        gen_value(b, L, depth + 1);
        lua_rawseti(L, -2, i);
      }
      break;
    }
    case 10: lua_newtable(L); break;
    default: { /* a chain around the encoder's and the signer's depth limits */
      unsigned n = 55 + fz_below(b, 20), i;
      const char *name = names[fz_below(b, 4)];
      gen_text(b, L);
      for (i = 0; i < n; i++) {
        lua_createtable(L, 0, 1);
        lua_insert(L, -2);
        lua_setfield(L, -2, name);
      }
    }
  }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  lua_State *L = fz_state();
  (void)argc, (void)argv;
  check = fz_chunk(L, "=xml_encode_sign oracle", oracle);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fz_state();
  fz_bytes b = { data, size };
  size_t klen;
  const char *key;
  /* method: mostly a real one, sometimes any bytes */
  if (fz_below(&b, 8) == 0) {
    size_t mlen;
    const char *m = fz_take(&b, 16, &mlen);
    lua_pushlstring(L, m, mlen);
  } else {
    static const char *const methods[] = { "task.getList", "task.update", "auth.login", "handbook.getRecords",
                                           "contact.add", "action.add" };
    lua_pushstring(L, methods[fz_below(&b, 6)]);
  }
  key = fz_take(&b, 24, &klen);
  /* params: a table of named elements (sometimes something else) */
  if (fz_below(&b, 16) == 0) gen_value(&b, L, 0);
  else gen_table(&b, L, 0);
  lua_pushlstring(L, key, klen);
  fz_call_or_abort(L, check, 3, "xml_encode_sign");
  fz_done(L);
  return 0;
}
