/* xml_decode.c: libFuzzer target for core.xml_decode (src/xml_decode.c).
 *
 * The input is a Planfix XML answer. It is decoded twice: without a list
 * table, and with the one lua/planapi/planfix_xml/init.lua passes (every nested
 * list container plus the root of every list method). The same bytes then
 * go to core.xml_sign_string (src/sign.c), which reads XML with libxml2's
 * tree parser.
 *
 * Oracle: no crash, no sanitizer report; a failure is `nil, err` with a
 * planapi error of kind "decode" (or a raised error); both decodes agree on
 * success; every decoded value has the documented shape (strings and tables
 * only, keys are names, "@attr", "#text" or a contiguous 1..n; a table with
 * items carries planapi.array's mark, and no table another metatable). */
#include "common.h"

static const char oracle[] =
  "local core = ...\n"
  "local methods = require 'planapi.planfix_xml.methods'\n"
  "local lists = {}\n"
  "for name in pairs(methods.nested_lists) do lists[name] = true end\n"
  "for _, info in pairs(methods.methods) do\n"
  "  if info.list and info.root then lists[info.root] = true end\n"
  "end\n"
  "local function fail(fmt, ...) error(('ORACLE: ' .. fmt):format(...), 2) end\n"
  "local function shape(v, path, depth)\n"
  "  if type(v) == 'string' then return end\n"
  "  if type(v) ~= 'table' then fail('%s is a %s', path, type(v)) end\n"
  "  if depth > 300 then fail('%s nested deeper than the decoder allows', path) end\n"
  "  local mt = getmetatable(v)\n"
  "  if mt ~= nil and mt ~= core.array_mt then fail('%s has a metatable', path) end\n"
  "  local n = #v\n"
  "  if n > 0 and mt ~= core.array_mt then fail('%s has items but no array mark', path) end\n"
  "  for k, x in pairs(v) do\n"
  "    if math.type(k) == 'integer' then\n"
  "      if k < 1 or k > n then fail('%s has index %d outside 1..%d', path, k, n) end\n"
  "    elseif type(k) == 'string' then\n"
  "      if k == '' or k == '@' then fail('%s has an empty name', path) end\n"
  "      if k:sub(1, 1) == '#' and k ~= '#text' then fail('%s has key %q', path, k) end\n"
  "      if k == '#text' and type(x) ~= 'string' then fail('%s.#text is not a string', path) end\n"
  "      if k:sub(1, 1) == '@' and type(x) ~= 'string' then fail('%s.%s is not a string', path, k) end\n"
  "    else\n"
  "      fail('%s has a key of type %s', path, type(k))\n"
  "    end\n"
  "    shape(x, path .. '.' .. tostring(k), depth + 1)\n"
  "  end\n"
  "end\n"
  "local function check_err(doc, err, how)\n"
  "  if doc ~= nil then shape(doc, 'root', 0) return true end\n"
  "  if not core.is_error(err) or err.kind ~= 'decode' or type(err.message) ~= 'string' then\n"
  "    fail('xml_decode (%s) returned nil without a decode error: %s', how, tostring(err))\n"
  "  end\n"
  "  return false\n"
  "end\n"
  "return function(s)\n"
  "  local ok1, doc1, err1 = pcall(core.xml_decode, s)\n"
  "  local ok2, doc2, err2 = pcall(core.xml_decode, s, lists)\n"
  "  local good1 = ok1 and check_err(doc1, err1, 'no lists')\n"
  "  local good2 = ok2 and check_err(doc2, err2, 'lists')\n"
  "  if ok1 and ok2 and good1 ~= good2 then\n"
  "    fail('the list table changed whether the document decodes: %s / %s', tostring(err1), tostring(err2))\n"
  "  end\n"
  "  local ok, str = pcall(core.xml_sign_string, s)\n"
  "  if ok and type(str) ~= 'string' then fail('xml_sign_string returned a %s', type(str)) end\n"
  "  if not ok and not core.is_error(str) and type(str) ~= 'string' then\n"
  "    fail('xml_sign_string raised a %s', type(str))\n"
  "  end\n"
  "end\n";

static int check;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  lua_State *L = fz_state();
  (void)argc, (void)argv;
  check = fz_chunk(L, "=xml_decode oracle", oracle);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fz_feed_bytes(check, data, size, "xml_decode");
}
