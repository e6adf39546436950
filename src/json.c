/* json.c: JSON for request bodies and responses.
 *
 * Decoding goes through a private lua-cjson instance (cjson.new(), so the
 * global cjson settings a host may rely on are never touched), followed by
 * one pass that turns integral floats back into integers: Debian's cjson
 * 2.1.0 decodes every number as a float under Lua 5.4, which would make an
 * id print as "42.0" in a URL.
 *
 * Encoding is our own, because cjson 2.1.0 cannot do what the APIs need:
 * planapi.array marks an empty table as [] (Planado and Planfix both give
 * "[]" a meaning: detach all files), keys come out sorted so the bytes sent
 * are deterministic and testable, integers keep all 64 bits, and a value
 * that has no JSON form is an error naming where it sits in the table. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errors.h"
#include "utf8.h"

#define PA_ARRAY_MT "planapi.array"
#define PA_CJSON_DECODE "planapi.cjson_decode"
#define PA_JSON_MAX_DEPTH 100

/* ---------------------------------------------------------------- encode */

/* Where the encoder is, for error messages: ".filters[2].value". */
typedef struct {
  int is_index;
  lua_Integer index;
  const char *key;
  size_t key_len;
} path_seg;

typedef struct {
  lua_State *L;
  pa_buf *b;
  int depth;
  path_seg path[PA_JSON_MAX_DEPTH + 1];
} encoder;

static void enc_value(encoder *e, int idx);

static int enc_fail(encoder *e, const char *what) {
  lua_State *L = e->L;
  luaL_Buffer pb;
  int i;
  /* The path goes into its own string first; the error is raised after. */
  luaL_buffinit(L, &pb);
  luaL_addstring(&pb, "body");
  for (i = 0; i < e->depth; i++) {
    if (e->path[i].is_index) {
      char tmp[32];
      snprintf(tmp, sizeof tmp, "[%lld]", (long long)e->path[i].index);
      luaL_addstring(&pb, tmp);
    } else {
      luaL_addchar(&pb, '.');
      luaL_addlstring(&pb, e->path[i].key, e->path[i].key_len > 64 ? 64 : e->path[i].key_len);
    }
  }
  luaL_pushresult(&pb);
  return pa_error_raise(L, "cannot encode JSON at %s: %s", lua_tostring(L, -1), what);
}

static void enc_add(encoder *e, const char *s, size_t n) {
  if (!pa_buf_add(e->b, s, n)) enc_fail(e, "out of memory");
}

#define ENC_LIT(e, s) enc_add((e), (s), sizeof(s) - 1)

static void enc_string(encoder *e, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t i = 0, run = 0;
  if (!pa_buf_reserve(e->b, len + 2)) enc_fail(e, "out of memory");
  ENC_LIT(e, "\"");
  while (i < len) {
    unsigned char c = (unsigned char)s[i];
    const char *esc = NULL;
    char u[6];
    if (c >= 0x20 && c != '"' && c != '\\') {
      size_t n = c < 0x80 ? 1 : pa_utf8_seq((const unsigned char *)s + i, len - i);
      if (n == 0) enc_fail(e, "string is not valid UTF-8");
      i += n;
      run += n;
      continue;
    }
    if (run) enc_add(e, s + i - run, run);
    run = 0;
    switch (c) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      default:
        u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
        u[4] = hex[c >> 4];
        u[5] = hex[c & 15];
        enc_add(e, u, 6);
    }
    if (esc) enc_add(e, esc, strlen(esc));
    i++;
  }
  if (run) enc_add(e, s + len - run, run);
  ENC_LIT(e, "\"");
}

static void enc_number(encoder *e, int idx) {
  char tmp[40];
  int n;
  if (lua_isinteger(e->L, idx)) {
    n = snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tointeger(e->L, idx));
  } else {
    double d = (double)lua_tonumber(e->L, idx);
    if (isnan(d) || isinf(d)) enc_fail(e, "NaN and infinity have no JSON form");
    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
      n = snprintf(tmp, sizeof tmp, "%.0f", d); /* 42.0 is sent as 42 */
    } else {
      n = snprintf(tmp, sizeof tmp, "%.15g", d);
      if (strtod(tmp, NULL) != d) n = snprintf(tmp, sizeof tmp, "%.17g", d);
    }
  }
  enc_add(e, tmp, (size_t)n);
}

static int key_cmp(const void *a, const void *b) {
  const path_seg *x = (const path_seg *)a, *y = (const path_seg *)b;
  size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
  int c = memcmp(x->key, y->key, n);
  if (c != 0) return c;
  return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

/* Is the key at idx a positive integer (a float with an integral value
 * counts, for 5.1)? Stores it in *out. */
static int key_index(lua_State *L, int idx, lua_Integer *out) {
  lua_Number n;
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  if (lua_isinteger(L, idx)) {
    *out = lua_tointeger(L, idx);
    return *out >= 1;
  }
  n = lua_tonumber(L, idx);
  if (n >= 1 && n == floor(n) && n < 9007199254740992.0) {
    *out = (lua_Integer)n;
    return 1;
  }
  return 0;
}

static void enc_array(encoder *e, int idx, lua_Integer n) {
  lua_Integer i;
  ENC_LIT(e, "[");
  for (i = 1; i <= n; i++) {
    if (i > 1) ENC_LIT(e, ",");
    e->path[e->depth].is_index = 1;
    e->path[e->depth].index = i;
    e->depth++;
    lua_rawgeti(e->L, idx, i);
    if (lua_isnil(e->L, -1)) enc_fail(e, "array has a hole (nil)");
    enc_value(e, lua_gettop(e->L));
    lua_pop(e->L, 1);
    e->depth--;
  }
  ENC_LIT(e, "]");
}

static void enc_table(encoder *e, int idx) {
  lua_State *L = e->L;
  size_t nstr = 0, nint = 0, i;
  lua_Integer max = 0;
  path_seg *keys;

  if (e->depth >= PA_JSON_MAX_DEPTH) enc_fail(e, "nested too deep (a cycle?)");
  luaL_checkstack(L, 6, "JSON encode");
  if (lua_getmetatable(L, idx)) {
    int marked;
    luaL_getmetatable(L, PA_ARRAY_MT);
    marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (marked) {
      lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
      /* The key after the last item is any key that is not an item: an
       * XML list container's "@count", say, which [] cannot carry. */
      if (n > 0) lua_pushinteger(L, n);
      else lua_pushnil(L);
      if (lua_next(L, idx)) {
        lua_pop(L, 2);
        enc_fail(e, "table mixes array items and string keys");
      }
      enc_array(e, idx, n);
      return;
    }
  }

  /* Classify the keys: all positive integers 1..n is an array, all strings
   * is an object; anything else has no faithful JSON form. */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_Integer k;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) nstr++;
    else if (key_index(L, -1, &k)) {
      nint++;
      if (k > max) max = k;
    } else {
      lua_pop(L, 1);
      enc_fail(e, "table key is neither a string nor a positive integer");
    }
  }
  if (nint > 0 && nstr > 0) enc_fail(e, "table mixes array items and string keys");
  if (nint > 0) {
    if ((size_t)max != nint) enc_fail(e, "array has a hole (nil)");
    enc_array(e, idx, max);
    return;
  }
  if (nstr == 0) {
    ENC_LIT(e, "{}");
    return;
  }

  /* Sorted keys: the key strings stay alive as keys of the table. */
  keys = (path_seg *)lua_newuserdatauv(L, nstr * sizeof *keys, 0);
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    keys[i].is_index = 0;
    keys[i].key = lua_tolstring(L, -1, &keys[i].key_len);
    i++;
  }
  qsort(keys, nstr, sizeof *keys, key_cmp);
  ENC_LIT(e, "{");
  for (i = 0; i < nstr; i++) {
    if (i > 0) ENC_LIT(e, ",");
    enc_string(e, keys[i].key, keys[i].key_len);
    ENC_LIT(e, ":");
    e->path[e->depth] = keys[i];
    e->depth++;
    lua_pushlstring(L, keys[i].key, keys[i].key_len);
    lua_rawget(L, idx);
    enc_value(e, lua_gettop(L));
    lua_pop(L, 1);
    e->depth--;
  }
  ENC_LIT(e, "}");
  lua_pop(L, 1); /* the key array */
}

static void enc_value(encoder *e, int idx) {
  lua_State *L = e->L;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: ENC_LIT(e, "null"); break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) ENC_LIT(e, "true");
      else ENC_LIT(e, "false");
      break;
    case LUA_TNUMBER: enc_number(e, idx); break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      enc_string(e, s, len);
      break;
    }
    case LUA_TTABLE: enc_table(e, idx); break;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) { /* planapi.null == cjson.null */
        ENC_LIT(e, "null");
        break;
      }
      /* fall through */
    default: {
      char what[64];
      snprintf(what, sizeof what, "a %s has no JSON form", luaL_typename(L, idx));
      enc_fail(e, what);
    }
  }
}

void pa_json_encode(lua_State *L, int idx, pa_buf *out) {
  encoder *e;
  idx = lua_absindex(L, idx);
  /* The encoder state is too big for the C stack of a coroutine-heavy host;
   * a userdata also frees itself if an error unwinds past us. */
  e = (encoder *)lua_newuserdatauv(L, sizeof *e, 0);
  e->L = L;
  e->b = out;
  e->depth = 0;
  enc_value(e, idx);
  lua_pop(L, 1);
}

static int l_json_encode(lua_State *L) {
  pa_buf *b;
  luaL_checkany(L, 1);
  b = pa_buf_push_owned(L);
  pa_json_encode(L, 1, b);
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  return 1;
}

/* ---------------------------------------------------------------- decode */

/* lua-cjson 2.1.0 decodes [] and {} to the same empty table, so the
 * decoder would lose what an encode needs to send the answer back. Before
 * decoding, one pass over the bytes finds every empty array outside
 * strings; if there are any, they are rewritten to ["<S>"], where <S> is a
 * single byte that is never UTF-8 (0xF8..0xFF) and that occurs nowhere in
 * the document, so no string the server sent can be taken for it. After
 * decoding, one pass over the tables marks every array (a table with [1]:
 * cjson gives objects only string keys), takes the sentinel out of the
 * empty ones, turns integral floats into integers (cjson 2.1.0 decodes every
 * number as a float under Lua 5.4, which would make an id print as "42.0"
 * in a URL) and drops null members of objects unless asked to keep them. */

typedef struct {
  size_t empties;    /* empty arrays outside strings */
  unsigned seen_high; /* bit k: byte 0xF8 + k occurs */
} prescan;

static int is_ws(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The index just past the empty array whose '[' is at i, or 0. */
static size_t empty_array_end(const char *s, size_t len, size_t i) {
  size_t j = i + 1;
  while (j < len && is_ws((unsigned char)s[j])) j++;
  return j < len && s[j] == ']' ? j + 1 : 0;
}

static void scan(const char *s, size_t len, prescan *p) {
  size_t i = 0;
  p->empties = 0;
  p->seen_high = 0;
  while (i < len) {
    unsigned char c = (unsigned char)s[i++];
    if (c == '"') {
      /* A string: only its end and escapes matter, and the bytes that are never UTF-8. */
      while (i < len) {
        c = (unsigned char)s[i++];
        if (c == '"') break;
        if (c == '\\') i++;
        else if (c >= 0xF8) p->seen_high |= 1u << (c - 0xF8);
      }
    } else if (c == '[') {
      if (i < len && (s[i] == ']' || is_ws((unsigned char)s[i])) && empty_array_end(s, len, i - 1))
        p->empties++;
    } else if (c >= 0xF8) {
      p->seen_high |= 1u << (c - 0xF8); /* invalid JSON; cjson says so */
    }
  }
}

/* Copy s to out with each empty array outside strings as ["<sentinel>"]. */
static size_t rewrite(const char *s, size_t len, char *out, char sentinel) {
  size_t i = 0, o = 0, end;
  int in_string = 0;
  while (i < len) {
    char c = s[i];
    if (in_string) {
      out[o++] = c;
      i++;
      if (c == '\\' && i < len) out[o++] = s[i++];
      else if (c == '"') in_string = 0;
    } else if (c == '[' && (end = empty_array_end(s, len, i)) != 0) {
      out[o++] = '[';
      out[o++] = '"';
      out[o++] = sentinel;
      out[o++] = '"';
      out[o++] = ']';
      i = end;
    } else {
      out[o++] = c;
      i++;
      if (c == '"') in_string = 1;
    }
  }
  return o;
}

typedef struct {
  lua_State *L;
  int array_mt;   /* stack index of the planapi.array metatable */
  int keep_nulls;
  int sentinel;   /* the sentinel byte, or -1 when there is none */
} walker;

#if LUA_VERSION_NUM >= 503
/* The number on top, as an integer if it is an integral float below 2^53. */
static void to_integer(lua_State *L) {
  lua_Number n = lua_tonumber(L, -1);
  lua_Integer i;
  if (n == floor(n) && fabs(n) < 9007199254740992.0 && lua_numbertointeger(n, &i)) {
    lua_pop(L, 1);
    lua_pushinteger(L, i);
  }
}
#define FLOAT_ON_TOP(L) (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1))
#else
#define to_integer(L) ((void)0)
#define FLOAT_ON_TOP(L) 0
#endif

static void walk(walker *w, int idx, int depth);

static void walk_array(walker *w, int idx, int depth) {
  lua_State *L = w->L;
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  lua_pushvalue(L, w->array_mt);
  lua_setmetatable(L, idx);
  for (i = 1; i <= n; i++) {
    int t;
    lua_rawgeti(L, idx, i);
    t = lua_type(L, -1);
    if (t == LUA_TTABLE) {
      walk(w, lua_gettop(L), depth + 1);
    } else if (t == LUA_TNUMBER && FLOAT_ON_TOP(L)) {
      to_integer(L);
      lua_rawseti(L, idx, i);
      continue;
    } else if (t == LUA_TSTRING && n == 1 && w->sentinel >= 0) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      if (len == 1 && (unsigned char)s[0] == (unsigned)w->sentinel) {
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, idx, 1); /* the empty array it stood for */
        continue;
      }
    }
    lua_pop(L, 1);
  }
}

static void walk(walker *w, int idx, int depth) {
  lua_State *L = w->L;
  if (depth > 1000) return; /* cjson's own depth limit stops before this */
  luaL_checkstack(L, 4, "JSON decode");
  lua_rawgeti(L, idx, 1);
  if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    walk_array(w, idx, depth);
    return;
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int t = lua_type(L, -1);
    if (t == LUA_TTABLE) {
      walk(w, lua_gettop(L), depth + 1);
    } else if (t == LUA_TNUMBER && FLOAT_ON_TOP(L)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      to_integer(L);
      lua_rawset(L, idx); /* assigning an existing key is safe during next */
      continue;
    } else if (t == LUA_TLIGHTUSERDATA && !w->keep_nulls && lua_touserdata(L, -1) == NULL) {
      lua_pushvalue(L, -2);
      lua_pushnil(L);
      lua_rawset(L, idx); /* clearing a field is safe during next */
    }
    lua_pop(L, 1);
  }
}

int pa_json_decode(lua_State *L, const char *s, size_t len, int keep_nulls) {
  prescan p;
  walker w;
  int top;
  scan(s, len, &p);
  w.sentinel = -1;
  luaL_getmetatable(L, PA_ARRAY_MT);
  lua_getfield(L, LUA_REGISTRYINDEX, PA_CJSON_DECODE);
  if (p.empties == 0) {
    lua_pushlstring(L, s, len);
  } else {
    char *out;
    int k = 0;
    while (k < 8 && (p.seen_high & (1u << k))) k++;
    if (k == 8) {
      lua_pop(L, 2);
      lua_pushliteral(L, "invalid JSON: its strings hold every byte that is never UTF-8");
      return 0;
    }
    w.sentinel = 0xF8 + k;
    /* A userdata, so an out-of-memory error while pushing cannot leak it. */
    out = (char *)lua_newuserdatauv(L, len + 3 * p.empties, 0);
    len = rewrite(s, len, out, (char)w.sentinel);
    lua_pushlstring(L, out, len);
    lua_remove(L, -2);
  }
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    /* cjson's message names the byte offset; keep it, it never holds secrets
     * beyond the bytes the server sent, which the caller already has. (The
     * offset counts the sentinels, 3 bytes each, before it.) */
    const char *msg = lua_tostring(L, -1);
    lua_pushfstring(L, "invalid JSON: %s", msg ? msg : "unknown error");
    lua_replace(L, -3);
    lua_pop(L, 1);
    return 0;
  }
  top = lua_gettop(L);
  w.L = L;
  w.array_mt = top - 1;
  w.keep_nulls = keep_nulls;
  if (lua_type(L, top) == LUA_TTABLE) walk(&w, top, 0);
  else if (FLOAT_ON_TOP(L)) to_integer(L);
  lua_remove(L, top - 1);
  return 1;
}

/* The nulls argument of json_decode and client:decode: nil or "absent"
 * drops null members of objects, "keep" keeps them as planapi.null. */
int pa_json_keep_nulls(lua_State *L, int idx) {
  const char *v;
  if (lua_isnoneornil(L, idx)) return 0;
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_getfield(L, idx, "nulls");
    v = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (v == NULL) return 0;
  } else {
    v = lua_tostring(L, idx);
  }
  if (v && strcmp(v, "keep") == 0) return 1;
  if (v && strcmp(v, "absent") == 0) return 0;
  return pa_error_raise(L, "option 'nulls' must be \"absent\" (the default: a null member is left out) "
                           "or \"keep\" (it is planapi.null)");
}

static int l_json_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int keep_nulls = pa_json_keep_nulls(L, 2);
  lua_settop(L, 1);
  if (!pa_json_decode(L, s, len, keep_nulls)) {
    const char *msg = lua_tostring(L, -1);
    lua_pushnil(L);
    pa_error_push(L, "decode", msg);
    return 2;
  }
  return 1;
}

/* planapi.array(t): mark t (or a new table) as a JSON array. */
static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  else luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, PA_ARRAY_MT);
  return 1;
}

static int l_is_array(lua_State *L) {
  int is = 0;
  if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, PA_ARRAY_MT);
    is = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, is);
  return 1;
}

void pa_json_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"json_encode", l_json_encode},
    {"json_decode", l_json_decode},
    {"array", l_array},
    {"is_array", l_is_array},
    {NULL, NULL}
  };
  int mod = lua_gettop(L);
  luaL_newmetatable(L, PA_ARRAY_MT);
  lua_pushliteral(L, "planapi.array");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, mod, "array_mt");

  /* require("cjson").new(): a private instance whose settings are ours. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "cjson");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "null");
  lua_setfield(L, mod, "null");
  lua_getfield(L, -1, "new");
  lua_call(L, 0, 1);
  /* Strict JSON: no NaN, Infinity or hex numbers from a server. Instance
   * settings are plain functions closed over the instance, called without self. */
  lua_getfield(L, -1, "decode_invalid_numbers");
  lua_pushboolean(L, 0);
  lua_call(L, 1, 0);
  lua_getfield(L, -1, "decode");
  lua_setfield(L, LUA_REGISTRYINDEX, PA_CJSON_DECODE);
  lua_pop(L, 2);

  luaL_setfuncs(L, fns, 0);
}
