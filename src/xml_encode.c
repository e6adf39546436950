/* xml_encode.c: a Lua table -> a Planfix XML API request body.
 *
 *   core.xml_encode("task.get", { account = "acme", task = { id = 1 } })
 *   -> <?xml version="1.0" encoding="UTF-8"?><request method="task.get"><account>acme</account><task><id>1</id></task></request>
 *
 * The convention, the same one xml_decode.c reads back:
 *   key = scalar           <key>text</key>  (booleans as 1/0, planapi.null as an empty element)
 *   key = { ... }          <key> children </key>, children in byte order of their names
 *   key = { a, b }         <key>a</key><key>b</key>  (an array repeats the element, in array order)
 *   ["@name"] = v          an attribute of the enclosing element
 *   ["#text"] = v          the text of an element that also has attributes
 * Keys are emitted sorted, which is also the order the signature (sign.c) reads them in, so the
 * same table always gives the same bytes. Every value is escaped; names and text are validated. */
#include "xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errors.h"
#include "luax.h"
#include "utf8.h"

#define MAX_DEPTH 64

typedef struct {
  lua_State *L;
  pa_buf *b;
  int depth;
  const char *path[MAX_DEPTH + 1];
} xenc;

static void xenc_fail(xenc *e, const char *what) {
  lua_State *L = e->L;
  luaL_Buffer pb;
  int i;
  luaL_buffinit(L, &pb);
  for (i = 0; i < e->depth; i++) {
    if (i) luaL_addchar(&pb, '.');
    luaL_addstring(&pb, e->path[i]);
  }
  luaL_pushresult(&pb);
  pa_error_raise(L, "cannot encode XML at %s: %s", lua_rawlen(L, -1) ? lua_tostring(L, -1) : "request",
                 what);
}

static void xadd(xenc *e, const char *s, size_t n) {
  if (!pa_buf_add(e->b, s, n)) xenc_fail(e, "out of memory");
}

#define XLIT(e, s) xadd((e), (s), sizeof(s) - 1)

/* XML 1.0 names, kept to what Planfix uses: a letter or '_', then letters,
 * digits, '_', '-', '.'. Anything else could break the document. */
static int valid_name(const char *s, size_t n) {
  size_t i;
  if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
    return 0;
  for (i = 1; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-' || c == '.'))
      return 0;
  }
  return n < 3 || !((s[0] == 'x' || s[0] == 'X') && (s[1] == 'm' || s[1] == 'M') &&
                    (s[2] == 'l' || s[2] == 'L'));
}

/* Escape text (in_attr: quotes too); refuse bytes XML 1.0 cannot carry. */
static void xadd_text(xenc *e, const char *s, size_t n, int in_attr) {
  size_t i, run = 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
      xenc_fail(e, "text has a control character XML cannot carry");
    if (c >= 0x80) {
      size_t len = pa_utf8_seq((const unsigned char *)s + i, n - i);
      if (len == 0) xenc_fail(e, "text is not valid UTF-8");
      /* U+FFFE and U+FFFF are valid UTF-8 but not XML 1.0 characters */
      if (len == 3 && c == 0xEF && (unsigned char)s[i + 1] == 0xBF && ((unsigned char)s[i + 2] & 0xFE) == 0xBE)
        xenc_fail(e, "text has a character XML cannot carry (U+FFFE or U+FFFF)");
      i += len - 1;
      run += len;
      continue;
    }
    switch (c) {
      case '&': esc = "&amp;"; break;
      case '<': esc = "&lt;"; break;
      case '>': esc = "&gt;"; break;
      case '"': esc = in_attr ? "&quot;" : NULL; break;
      case '\r': esc = "&#13;"; break; /* would be normalised away otherwise */
      case '\n': esc = in_attr ? "&#10;" : NULL; break;
      case '\t': esc = in_attr ? "&#9;" : NULL; break;
      default: break;
    }
    if (esc) {
      if (run) xadd(e, s + i - run, run);
      run = 0;
      xadd(e, esc, strlen(esc));
    } else {
      run++;
    }
  }
  if (run) xadd(e, s + n - run, run);
}

/* The text of a scalar value, or NULL for planapi.null; raises otherwise. */
static const char *scalar(xenc *e, int idx, size_t *len, char *tmp, size_t tmplen) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: return lua_tolstring(L, idx, len);
    case LUA_TBOOLEAN:
      *len = 1;
      return lua_toboolean(L, idx) ? "1" : "0";
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        *len = (size_t)snprintf(tmp, tmplen, "%lld", (long long)lua_tointeger(L, idx));
      } else {
        double d = (double)lua_tonumber(L, idx);
        if (d != d || d - d != 0) xenc_fail(e, "NaN and infinity have no XML form here");
        /* the range check first: casting a double outside long long is undefined */
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(long long)d)
          *len = (size_t)snprintf(tmp, tmplen, "%lld", (long long)d);
        else *len = (size_t)snprintf(tmp, tmplen, "%.17g", d);
      }
      return tmp;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) {
        *len = 0;
        return NULL;
      }
      /* fall through */
    default: {
      char what[64];
      snprintf(what, sizeof what, "a %s has no XML form", luaL_typename(L, idx));
      xenc_fail(e, what);
      return NULL;
    }
  }
}

static void enc_element(xenc *e, const char *name, size_t nlen, int idx);

/* Is the table at idx a non-empty sequence 1..n with no other keys? */
static lua_Integer array_length(lua_State *L, int idx) {
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
  if (n == 0) return 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    count++;
  }
  return count == n ? n : -1;
}

/* The inside of an element whose value is a (non-array) table. */
static void enc_children(xenc *e, const char *name, size_t nlen, int idx) {
  lua_State *L = e->L;
  size_t nkeys = 0, i;
  pa_key *keys;
  int has_text = 0;

  keys = pa_sorted_keys(L, idx, &nkeys);
  if (keys == NULL) {
    xenc_fail(e, "table keys must be element names (strings)");
    return; /* not reached */
  }

  /* <name attr="..."> */
  XLIT(e, "<");
  xadd(e, name, nlen);
  for (i = 0; i < nkeys; i++) {
    size_t vlen;
    char tmp[40];
    const char *v;
    if (keys[i].s[0] != '@') {
      if (keys[i].s[0] == '#') {
        /* "#text" is the element's text; any other "#" key is a typo that
         * would otherwise vanish from the request without a word */
        if (keys[i].len != 5 || memcmp(keys[i].s, "#text", 5) != 0)
          xenc_fail(e, "only \"#text\" may start with '#' (the element's text)");
        has_text = 1;
      }
      continue;
    }
    if (!valid_name(keys[i].s + 1, keys[i].len - 1)) xenc_fail(e, "attribute name is not a valid XML name");
    lua_pushlstring(L, keys[i].s, keys[i].len);
    lua_rawget(L, idx);
    v = scalar(e, lua_gettop(L), &vlen, tmp, sizeof tmp);
    XLIT(e, " ");
    xadd(e, keys[i].s + 1, keys[i].len - 1);
    XLIT(e, "=\"");
    if (v) xadd_text(e, v, vlen, 1);
    XLIT(e, "\"");
    lua_pop(L, 1);
  }
  XLIT(e, ">");
  if (has_text) {
    size_t vlen;
    char tmp[40];
    const char *v;
    lua_getfield(L, idx, "#text");
    v = scalar(e, lua_gettop(L), &vlen, tmp, sizeof tmp);
    if (v) xadd_text(e, v, vlen, 0);
    lua_pop(L, 1);
  }
  for (i = 0; i < nkeys; i++) {
    if (keys[i].s[0] == '@' || keys[i].s[0] == '#') continue;
    lua_pushlstring(L, keys[i].s, keys[i].len);
    lua_rawget(L, idx);
    enc_element(e, keys[i].s, keys[i].len, lua_gettop(L));
    lua_pop(L, 1);
  }
  XLIT(e, "</");
  xadd(e, name, nlen);
  XLIT(e, ">");
  lua_pop(L, 1); /* keys */
}

/* One key = value pair: an element, or several when value is an array. */
static void enc_element(xenc *e, const char *name, size_t nlen, int idx) {
  lua_State *L = e->L;
  if (e->depth >= MAX_DEPTH) xenc_fail(e, "nested too deep (a cycle?)");
  e->path[e->depth++] = name;
  if (!valid_name(name, nlen)) xenc_fail(e, "not a valid XML element name");
  luaL_checkstack(L, 8, "XML encode");
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_Integer n = array_length(L, idx), i;
    if (n < 0) xenc_fail(e, "table mixes array items and named keys");
    if (n > 0) {
      for (i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        if (lua_type(L, -1) == LUA_TTABLE && array_length(L, lua_gettop(L)) > 0)
          xenc_fail(e, "an array inside an array has no XML form");
        e->depth--; /* each item is an element of the same name */
        enc_element(e, name, nlen, lua_gettop(L));
        e->depth++;
        lua_pop(L, 1);
      }
    } else {
      lua_pushnil(L);
      if (lua_next(L, idx) == 0) { /* an empty table: an empty element */
        XLIT(e, "<");
        xadd(e, name, nlen);
        XLIT(e, "/>");
      } else {
        lua_pop(L, 2); /* the key and value lua_next pushed */
        enc_children(e, name, nlen, idx);
      }
    }
  } else {
    size_t vlen;
    char tmp[40];
    const char *v = scalar(e, idx, &vlen, tmp, sizeof tmp);
    XLIT(e, "<");
    xadd(e, name, nlen);
    if (v == NULL || vlen == 0) {
      XLIT(e, "/>");
    } else {
      XLIT(e, ">");
      xadd_text(e, v, vlen, 0);
      XLIT(e, "</");
      xadd(e, name, nlen);
      XLIT(e, ">");
    }
  }
  e->depth--;
}

void pa_xml_encode_request(lua_State *L, const char *method, size_t mlen, int params, pa_buf *out) {
  xenc *e = (xenc *)lua_newuserdatauv(L, sizeof *e, 0);
  params = lua_absindex(L, params);
  e->L = L;
  e->b = out;
  e->depth = 0;
  if (!valid_name(method, mlen)) pa_error_raise(L, "XML method name '%s' is not valid", method);
  XLIT(e, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<request method=\"");
  xadd(e, method, mlen);
  XLIT(e, "\">");
  if (lua_type(L, params) == LUA_TTABLE) {
    size_t nkeys = 0, i;
    pa_key *keys = pa_sorted_keys(L, params, &nkeys);
    if (keys == NULL) {
      pa_error_raise(L, "XML request parameter names must be strings");
      return; /* not reached */
    }
    for (i = 0; i < nkeys; i++) {
      if (keys[i].s[0] == '@' || keys[i].s[0] == '#')
        pa_error_raise(L, "the request element takes no attributes or text ('%s')", keys[i].s);
      lua_pushlstring(L, keys[i].s, keys[i].len);
      lua_rawget(L, params);
      enc_element(e, keys[i].s, keys[i].len, lua_gettop(L));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  } else if (!lua_isnoneornil(L, params)) {
    pa_error_raise(L, "XML request parameters must be a table");
  }
  XLIT(e, "</request>");
  lua_pop(L, 1);
}

/* core.xml_encode(method, params [, private_key]) -> request body.
 * With a private key the body carries its <signature>, computed over the
 * encoded document (sign.c) and placed last, as the reference code does. */
static int l_xml_encode(lua_State *L) {
  size_t mlen, klen = 0;
  const char *method = luaL_checklstring(L, 1, &mlen);
  const char *key = luaL_optlstring(L, 3, NULL, &klen);
  pa_buf *b;
  lua_settop(L, 3);
  b = pa_buf_push_owned(L);
  pa_xml_encode_request(L, method, mlen, 2, b);
  if (key != NULL) {
    char hex[33];
    static const char close_tag[] = "</request>";
    pa_xml_signature(L, b->p, b->len, key, klen, hex);
    b->len -= sizeof close_tag - 1;
    if (!pa_buf_add(b, "<signature>", 11) || !pa_buf_add(b, hex, 32) ||
        !pa_buf_add(b, "</signature></request>", 22))
      return luaL_error(L, "out of memory");
  }
  lua_pushlstring(L, b->p, b->len);
  return 1;
}

/* core.xml_decode(body [, lists]) -> root table | nil, err */
static int l_xml_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_newtable(L);
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
  }
  if (!pa_xml_decode(L, s, len, 2)) {
    lua_pushnil(L);
    pa_error_push(L, "decode", lua_tostring(L, -2));
    return 2;
  }
  return 1;
}

void pa_xml_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"xml_encode", l_xml_encode}, {"xml_decode", l_xml_decode}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
