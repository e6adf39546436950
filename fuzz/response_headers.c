/* response_headers.c: libFuzzer target for the response-header parser
 * (pa_headers_push in src/headers.c, Lua-visible as
 * core.parse_headers; the libcurl transport and lua/planapi/transport/ngx.lua
 * both build res.headers with it).
 *
 * The input is a raw header block as a server could send it (status lines,
 * CRLF or LF, folded lines, repeated names, junk).
 *
 * Oracle: core.parse_headers never raises and returns a table whose keys
 * are non-empty strings with no upper-case ASCII letter, no ':', no CR, no
 * LF and no other control character, and whose values are strings with no
 * LF; there are no more keys than lines;
 * and every line "Name: value" whose name is a token (RFC 9110) is found
 * under its lower-cased name.
 *
 * The cache of the libcurl transport (pa_headers_push_cached) changes
 * nothing: the input cut at its first NUL into a block before and a block
 * now (the same block twice when there is no NUL), the block now parsed
 * with the cache the block before left gives the table the uncached
 * parser gives, and so does the same block once more (every line kept). */
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "../src/headers.h"

static int parse;

static int is_tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  lua_State *L = fz_state();
  (void)argc, (void)argv;
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "planapi.core");
  lua_getfield(L, -1, "parse_headers");
  if (lua_type(L, -1) != LUA_TFUNCTION) fz_fail("core.parse_headers is missing");
  parse = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  return 0;
}

/* Every key of the table at a is in the table at b with the same value, and
 * the other way round. */
static void same_tables(lua_State *L, int a, int b, const char *what) {
  int k;
  for (k = 0; k < 2; k++) {
    int from = k ? b : a, to = k ? a : b;
    lua_pushnil(L);
    while (lua_next(L, from)) {
      lua_pushvalue(L, -2);
      lua_rawget(L, to);
      if (!lua_rawequal(L, -1, -2)) fz_fail("%s: header '%s' differs from the uncached parse", what, lua_tostring(L, -3));
      lua_pop(L, 2);
    }
  }
}

/* The cached parse of now after before, and again, against the uncached one. */
static void check_cache(lua_State *L, const char *s, size_t size) {
  pa_header_cache cache;
  const char *nul = (const char *)memchr(s, '\0', size);
  const char *now = nul ? nul + 1 : s;
  size_t before_len = nul ? (size_t)(nul - s) : size, now_len = size - (size_t)(now - s);
  int anchor, plain;
  memset(&cache, 0, sizeof cache);
  lua_newtable(L);
  anchor = lua_gettop(L);
  pa_headers_push_cached(L, s, before_len, &cache, anchor);
  lua_pop(L, 1);
  pa_headers_push(L, now, now_len);
  plain = lua_gettop(L);
  pa_headers_push_cached(L, now, now_len, &cache, anchor);
  same_tables(L, plain, lua_gettop(L), "after the block before");
  pa_headers_push_cached(L, now, now_len, &cache, anchor);
  same_tables(L, plain, lua_gettop(L), "the same block again");
  free(cache.block.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fz_state();
  const char *s = (const char *)data;
  size_t lines = 1, i, keys = 0, pos;
  int t;
  for (i = 0; i < size; i++) lines += s[i] == '\n';
  lua_rawgeti(L, LUA_REGISTRYINDEX, parse);
  lua_pushlstring(L, s, size);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) fz_fail("parse_headers raised: %s", lua_tostring(L, -1));
  if (lua_type(L, -1) != LUA_TTABLE) fz_fail("parse_headers returned a %s", luaL_typename(L, -1));
  t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    size_t klen, vlen;
    const char *k, *v;
    if (lua_type(L, -2) != LUA_TSTRING) fz_fail("a header key is a %s", luaL_typename(L, -2));
    if (lua_type(L, -1) != LUA_TSTRING) fz_fail("a header value is a %s", luaL_typename(L, -1));
    k = lua_tolstring(L, -2, &klen);
    v = lua_tolstring(L, -1, &vlen);
    if (klen == 0) fz_fail("an empty header name");
    for (i = 0; i < klen; i++) {
      unsigned char c = (unsigned char)k[i];
      if (c >= 'A' && c <= 'Z') fz_fail("header name '%s' is not lower-case", k);
      if (c == ':') fz_fail("header name '%s' has a colon", k);
      if (c < 0x20 || c == 0x7f) fz_fail("header name '%s' has control character 0x%02x", k, c);
    }
    if (memchr(v, '\n', vlen)) fz_fail("the value of '%s' has a line feed", k);
    keys++;
    lua_pop(L, 1);
  }
  if (keys > lines) fz_fail("%zu keys from %zu lines", keys, lines);
  /* every well-formed field line is there */
  for (pos = 0; pos < size;) {
    size_t end = pos, n = 0;
    while (end < size && s[end] != '\n') end++;
    while (pos + n < end && is_tchar((unsigned char)s[pos + n])) n++;
    if (n > 0 && n < 200 && pos + n < end && s[pos + n] == ':' && !(n >= 5 && memcmp(s + pos, "HTTP/", 5) == 0)) {
      char name[200];
      for (i = 0; i < n; i++) {
        char c = s[pos + i];
        name[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
      }
      lua_pushlstring(L, name, n);
      if (lua_rawget(L, t) != LUA_TSTRING) fz_fail("header line '%.*s' is missing from the table", (int)n, name);
      lua_pop(L, 1);
    }
    pos = end + 1;
  }
  check_cache(L, s, size);
  fz_done(L);
  return 0;
}
