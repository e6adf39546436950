/* json.c: JSON for request bodies and responses.
 *
 * Decoding goes through a private lua-cjson instance (cjson.new(), so the
 * global cjson settings a host may rely on are never touched), between a
 * pre-pass that lets empty arrays survive (and blanks null members cjson
 * need not build, see "null members, blanked") and one walk that marks arrays,
 * turns integral floats back into integers and leaves null members out
 * (see "decode" below).
 *
 * Encoding is our own, because cjson 2.1.0 cannot do what the APIs need:
 * planapi.array marks an empty table as [] (Planado and Planfix both give
 * "[]" a meaning: detach all files), keys come out sorted so the bytes sent
 * are deterministic and testable, integers keep all 64 bits, and a value
 * that has no JSON form is an error naming where it sits in the table. */
#define _GNU_SOURCE /* memmem (glibc and musl declare it under this name; the BSDs always do) */
#include "json.h"

#include <math.h>
#include <stdio.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "errors.h"
#include "luax.h"
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

/* A table marked with planapi.array: its items 1..n, nothing else. */
static void enc_marked_array(encoder *e, int idx) {
  lua_State *L = e->L;
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  /* The key after the last item is any key that is not an item: an XML
   * list container's "@count", say, which [] cannot carry. */
  if (n > 0) lua_pushinteger(L, n);
  else lua_pushnil(L);
  if (lua_next(L, idx)) {
    lua_pop(L, 2);
    enc_fail(e, "table mixes array items and string keys");
  }
  enc_array(e, idx, n);
}

/* Count the keys of the table at idx: all positive integers 1..n is an
 * array (*max = n), all strings is an object; anything else has no
 * faithful JSON form. Returns the number of string keys. */
static size_t classify_keys(encoder *e, int idx, size_t *nint, lua_Integer *max) {
  lua_State *L = e->L;
  size_t nstr = 0;
  *nint = 0;
  *max = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_Integer k;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) nstr++;
    else if (key_index(L, -1, &k)) {
      (*nint)++;
      if (k > *max) *max = k;
    } else {
      lua_pop(L, 1);
      enc_fail(e, "table key is neither a string nor a positive integer");
    }
  }
  if (*nint > 0 && nstr > 0) enc_fail(e, "table mixes array items and string keys");
  if (*nint > 0 && (size_t)*max != *nint) enc_fail(e, "array has a hole (nil)");
  return nstr;
}

/* An object of nstr string keys, in sorted order; the key strings stay
 * alive as keys of the table. */
static void enc_object(encoder *e, int idx, size_t nstr) {
  lua_State *L = e->L;
  size_t i = 0;
  path_seg *keys = (path_seg *)lua_newuserdatauv(L, nstr * sizeof *keys, 0);
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

static void enc_table(encoder *e, int idx) {
  size_t nstr, nint;
  lua_Integer max;
  if (e->depth >= PA_JSON_MAX_DEPTH) enc_fail(e, "nested too deep (a cycle?)");
  luaL_checkstack(e->L, 6, "JSON encode");
  if (pa_is_table_of(e->L, idx, PA_ARRAY_MT)) {
    enc_marked_array(e, idx);
    return;
  }
  nstr = classify_keys(e, idx, &nint, &max);
  if (nint > 0) enc_array(e, idx, max);
  else if (nstr == 0) ENC_LIT(e, "{}");
  else enc_object(e, idx, nstr);
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
 * decoding, the text is looked at for the two kinds of empty table:
 *   no empty array   cjson decodes the caller's string, and every empty
 *                    table is an object;
 *   no empty object  the same, and every empty table is an array (the
 *                    usual case with arrays: no copy, no extra table);
 *   both             cjson gets a copy of the text in which each empty
 *                    array stands in for itself as a placeholder of the
 *                    same length:
 *     -0 (padded with spaces)  when the document has no number that could
 *                              decode to -0.0 itself;
 *     ["<S>"]                  otherwise, where <S> is a single byte that is
 *                              never UTF-8 (0xF8..0xFF) and occurs nowhere in
 *                              the document, so no string the server sent
 *                              can be taken for it.
 * A byte search for [ and ] (or { and }) with nothing but whitespace between
 * them settles the first two cases for most documents; only when both may be
 * there does a pre-pass look at which are outside strings.
 * After decoding, one walk over the tables marks every array (a table whose
 * first key is a number: cjson gives objects only string keys) and the empty
 * tables that are arrays, puts a marked empty table where a placeholder is,
 * turns integral floats into integers (cjson 2.1.0 decodes every number as a
 * float under Lua 5.4, which would make an id print as "42.0" in a URL) and
 * drops null members of objects unless asked to keep them. The walk, through
 * lua_next, is most of the cost above cjson's own; a walk that follows the
 * text instead and touches only numbers, nulls and arrays was tried and cost
 * more on a REST page, where every object has a number or a null to fix. */

/* The pre-pass counts the empty arrays and objects outside strings the way
 * simdjson finds structure: 64 bytes at a time (SSE2), quotes and opening
 * brackets as bit masks, which bytes are inside strings from the parity of
 * the quotes before them (a prefix xor); only a bracket followed by a
 * closing one or whitespace is looked at closer. A block with a backslash
 * (an escape) is walked byte by byte. The copy is made at the first empty
 * array, and empty arrays become -0 in it as they are found. */
typedef struct {
  lua_State *L;
  const char *s;
  size_t len;
  char *out;          /* the copy, NULL until the first empty array */
  size_t escaped;     /* the byte at this index is escaped (SIZE_MAX: none) */
  int in_string;
  size_t empty_arrays;
  size_t empty_objects;
#if LUA_VERSION_NUM >= 504
  luaL_Buffer b;      /* one block for the copy, freed when its string is made */
#endif
} scanner;

static void scanner_init(scanner *sc, lua_State *L, const char *s, size_t len) {
  sc->L = L;
  sc->s = s;
  sc->len = len;
  sc->out = NULL;
  sc->escaped = SIZE_MAX;
  sc->in_string = 0;
  sc->empty_arrays = 0;
  sc->empty_objects = 0;
}

/* The copy goes on top of the stack (a buffer, until push_copy). Only from
 * Lua 5.4 on does a luaL_Buffer always hold a stack slot: in 5.3 a small one
 * lives in the C struct and pushes nothing, and 5.1 has no sized buffer. */
static void start_copy(scanner *sc) {
#if LUA_VERSION_NUM >= 504
  sc->out = luaL_buffinitsize(sc->L, &sc->b, sc->len);
#else
  sc->out = (char *)lua_newuserdata(sc->L, sc->len);
#endif
  memcpy(sc->out, sc->s, sc->len);
}

/* Replace the buffer on top of the stack with the copy as a string. */
static void push_copy(scanner *sc) {
#if LUA_VERSION_NUM >= 504
  luaL_pushresultsize(&sc->b, sc->len);
#else
  lua_pushlstring(sc->L, sc->out, sc->len);
  lua_remove(sc->L, -2);
#endif
}

static int is_ws(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* At a '[' or '{' outside strings: count an empty object; an empty array
 * becomes -0 and spaces in the copy. */
static void on_bracket(scanner *sc, size_t at) {
  size_t j = at + 1;
  while (j < sc->len && is_ws((unsigned char)sc->s[j])) j++;
  if (j >= sc->len) return;
  if (sc->s[at] == '{') {
    if (sc->s[j] == '}') sc->empty_objects++;
    return;
  }
  if (sc->s[j] != ']') return;
  sc->empty_arrays++;
  if (sc->out == NULL) start_copy(sc);
  sc->out[at] = '-';
  sc->out[at + 1] = '0';
  if (j + 1 - at > 2) memset(sc->out + at + 2, ' ', j + 1 - at - 2);
}

/* The string state past the byte c at p: 1 when c is outside strings and
 * not a quote (structure to look at), else 0. */
static int outside_string(scanner *sc, size_t p, char c) {
  if (sc->in_string) {
    if (p == sc->escaped) return 0;
    if (c == '\\') sc->escaped = p + 1;
    else if (c == '"') sc->in_string = 0;
    return 0;
  }
  if (c == '"') {
    sc->in_string = 1;
    return 0;
  }
  return 1;
}

/* Bytes [from, to) one at a time. */
static void scan_bytes(scanner *sc, size_t from, size_t to) {
  size_t p;
  for (p = from; p < to; p++) {
    char c = sc->s[p];
    if (outside_string(sc, p, c) && (c == '[' || c == '{')) on_bracket(sc, p);
  }
}

#ifdef __SSE2__
/* Bit i set when an odd number of the bits 0..i of m are: with the quotes
 * of a block, which of its bytes are inside a string (or its closing
 * quote) when none is open before the block. */
static uint64_t prefix_xor(uint64_t m) {
  m ^= m << 1;
  m ^= m << 2;
  m ^= m << 4;
  m ^= m << 8;
  m ^= m << 16;
  m ^= m << 32;
  return m;
}

/* Which of 64 bytes (four vectors) the comparison cmp(v) picks out. */
#define MASK64(cmp, v0, v1, v2, v3)                                                           \
  ((uint64_t)(unsigned)_mm_movemask_epi8(cmp(v0)) |                                           \
   (uint64_t)(unsigned)_mm_movemask_epi8(cmp(v1)) << 16 |                                     \
   (uint64_t)(unsigned)_mm_movemask_epi8(cmp(v2)) << 32 |                                     \
   (uint64_t)(unsigned)_mm_movemask_epi8(cmp(v3)) << 48)
#define IS_QUOTE(v) _mm_cmpeq_epi8((v), _mm_set1_epi8('"'))
/* '[' and '{' differ only in the bit 0x20. */
#define IS_OPENING(v) _mm_cmpeq_epi8(_mm_or_si128((v), _mm_set1_epi8(0x20)), _mm_set1_epi8('{'))
#define IS_BACKSLASH(v) _mm_cmpeq_epi8((v), _mm_set1_epi8('\\'))

/* An opening bracket outside strings at i: only one followed by a closing
 * bracket or whitespace (or a control byte, which cjson refuses) can be
 * empty; most are followed by a quote or a value. */
static void on_opening(scanner *sc, size_t i) {
  unsigned char next = (unsigned char)sc->s[i + 1];
  if (next == ']' || next == '}' || next <= ' ') on_bracket(sc, i);
}
#endif

static void scan(scanner *sc) {
  size_t i = 0;
#ifdef __SSE2__
  /* 65 bytes readable: on_opening looks at the byte after a bracket. */
  for (; i + 65 <= sc->len; i += 64) {
    const char *p = sc->s + i;
    __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
    __m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 32));
    __m128i v3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 48));
    uint64_t inside, open;
    __m128i backslashes = _mm_or_si128(_mm_or_si128(IS_BACKSLASH(v0), IS_BACKSLASH(v1)),
                                       _mm_or_si128(IS_BACKSLASH(v2), IS_BACKSLASH(v3)));
    if (_mm_movemask_epi8(backslashes) != 0 || sc->escaped == i) {
      scan_bytes(sc, i, i + 64);
      continue;
    }
    inside = prefix_xor(MASK64(IS_QUOTE, v0, v1, v2, v3));
    if (sc->in_string) inside = ~inside;
    open = MASK64(IS_OPENING, v0, v1, v2, v3) & ~inside;
    while (open) {
      on_opening(sc, i + (unsigned)__builtin_ctzll(open));
      open &= open - 1;
    }
    sc->in_string = (int)(inside >> 63);
  }
#endif
  scan_bytes(sc, i, sc->len);
}

/* Could s hold an empty array (open '[', close ']') or an empty object
 * ('{', '}'): is any close byte, in strings too, right after an open one
 * and whitespace? */
static int may_hold_empty(const char *s, size_t len, char open, char close) {
  const char *p = s, *end = s + len;
  while ((p = (const char *)memchr(p, close, (size_t)(end - p))) != NULL) {
    const char *q = p;
    while (q > s && is_ws((unsigned char)q[-1])) q--;
    if (q > s && q[-1] == open) return 1;
    p++;
  }
  return 0;
}

/* After a '-' at i - 1: could the number decode to -0.0? A zero mantissa
 * (-0, -0.0), or any exponent (-1e-400 underflows); not a number at all
 * (a dash in a string) is no. Errs towards yes. */
static int may_be_negative_zero(const char *s, size_t len, size_t i) {
  int nonzero = 0, digits = 0;
  for (; i < len; i++) {
    char c = s[i];
    if (c >= '1' && c <= '9') nonzero = 1;
    else if (c == 'e' || c == 'E') return digits > 0;
    else if (c != '0' && c != '.') break;
    digits++;
  }
  return digits > 0 && !nonzero;
}

/* Could any number of s decode to -0.0? Every '-', in strings too (dates
 * have many, and "-01" is no zero), so a yes may be a false alarm. */
static int may_hold_negative_zero(const char *s, size_t len) {
  const char *p = s, *end = s + len;
  while ((p = (const char *)memchr(p, '-', (size_t)(end - p))) != NULL) {
    p++;
    if (may_be_negative_zero(s, len, (size_t)(p - s))) return 1;
  }
  return 0;
}

/* The index just past the string whose opening quote is just before i
 * (len if it never closes: cjson reports that). */
static size_t string_end(const char *s, size_t len, size_t i) {
  for (;;) {
    const char *q = (const char *)memchr(s + i, '"', len - i);
    size_t j, backslashes = 0;
    if (q == NULL) return len;
    j = (size_t)(q - s);
    while (j - backslashes > i && s[j - backslashes - 1] == '\\') backslashes++;
    if (backslashes % 2 == 0) return j + 1;
    i = j + 1; /* an escaped quote */
  }
}

/* The index just past the empty array whose '[' is at i, or 0. */
static size_t empty_array_end(const char *s, size_t len, size_t i) {
  size_t j = i + 1;
  while (j < len && is_ws((unsigned char)s[j])) j++;
  return j < len && s[j] == ']' ? j + 1 : 0;
}

/* A byte that is never UTF-8 and is not in s, or -1. */
static int pick_sentinel(const char *s, size_t len) {
  int b;
  for (b = 0xF8; b <= 0xFF; b++)
    if (memchr(s, b, len) == NULL) return b;
  return -1;
}

/* Push a copy of s with every empty array as ["<sentinel>"] (the rare
 * document with empty objects and a negative zero of its own). */
static void push_with_sentinels(lua_State *L, const char *s, size_t len, int sentinel) {
  luaL_Buffer b;
  size_t i = 0, copied = 0, end;
  luaL_buffinit(L, &b);
  while (i < len) {
    char c = s[i++];
    if (c == '"') {
      i = string_end(s, len, i);
    } else if (c == '[' && (end = empty_array_end(s, len, i - 1)) != 0) {
      luaL_addlstring(&b, s + copied, i - copied); /* up to the '[' */
      luaL_addchar(&b, '"');
      luaL_addchar(&b, (char)sentinel);
      luaL_addchar(&b, '"');
      luaL_addchar(&b, ']');
      copied = i = end;
    }
  }
  luaL_addlstring(&b, s + copied, len - copied);
  luaL_pushresult(&b);
}

typedef struct {
  lua_State *L;
  int array_mt;       /* stack index of the planapi.array metatable */
  int keep_nulls;
  int empty_arrays;   /* every empty table is an array (the text has no empty object) */
  int negative_zeros; /* -0.0 stands for an empty array */
  int sentinel;       /* ["<sentinel>"] stands for an empty array, or -1 */
} walker;

/* What the number on top of the stack becomes in the result. */
enum { NUMBER_STAYS, NUMBER_INTEGER, NUMBER_EMPTY_ARRAY };

/* NUMBER_INTEGER (the value in *out) for an integral float below 2^53 in
 * magnitude (5.3+; an integer, which cjson 2.1.0 never gives, comes back
 * the same), NUMBER_EMPTY_ARRAY for the -0 placeholder. */
static int number_fix(const walker *w, lua_Integer *out) {
  lua_Number n = lua_tonumber(w->L, -1);
  if (n == 0 && w->negative_zeros && signbit(n)) return NUMBER_EMPTY_ARRAY;
#if LUA_VERSION_NUM >= 503
  /* In range first, so the cast is defined; NaN fails both tests. */
  if (n > -9007199254740992.0 && n < 9007199254740992.0) {
    lua_Integer i = (lua_Integer)n;
    if ((lua_Number)i == n) {
      *out = i;
      return NUMBER_INTEGER;
    }
  }
#else
  (void)out;
#endif
  return NUMBER_STAYS;
}

static void mark_array(const walker *w, int idx) {
  lua_pushvalue(w->L, w->array_mt);
  lua_setmetatable(w->L, idx);
}

/* When the number on top of the stack is to change (number_fix), push
 * what it becomes and return 1; else 0. */
static int push_fixed(const walker *w) {
  lua_Integer i = 0;
  int fix = number_fix(w, &i);
  if (fix == NUMBER_STAYS) return 0;
  if (fix == NUMBER_INTEGER) {
    lua_pushinteger(w->L, i);
  } else {
    lua_createtable(w->L, 0, 0);
    mark_array(w, lua_gettop(w->L));
  }
  return 1;
}

/* lua_rawgeti, returning the type of the item as 5.3+ does. */
static int rawgeti_type(lua_State *L, int idx, lua_Integer i) {
#if LUA_VERSION_NUM >= 503
  return lua_rawgeti(L, idx, i);
#else
  lua_rawgeti(L, idx, (int)i);
  return lua_type(L, -1);
#endif
}

static void walk(walker *w, int idx, int depth);

static void walk_array(walker *w, int idx, int depth) {
  lua_State *L = w->L;
  lua_Integer i, n = (lua_Integer)lua_rawlen(L, idx);
  mark_array(w, idx);
  for (i = 1; i <= n; i++) {
    int t = rawgeti_type(L, idx, i);
    if (t == LUA_TTABLE) {
      walk(w, idx + 1, depth + 1);
    } else if (t == LUA_TNUMBER) {
      if (push_fixed(w)) lua_rawseti(L, idx, i);
    } else if (t == LUA_TSTRING && n == 1 && w->sentinel >= 0) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      if (len == 1 && (unsigned char)s[0] == (unsigned)w->sentinel) {
        lua_pushnil(L);
        lua_rawseti(L, idx, 1); /* the empty array it stood for */
      }
    }
    lua_pop(L, 1);
  }
}

/* The table at idx, which is the top of the stack. */
static void walk(walker *w, int idx, int depth) {
  lua_State *L = w->L;
  if (depth > 1000) return; /* cjson's own depth limit stops before this */
  if (depth % 4 == 0) luaL_checkstack(L, 20, "JSON decode"); /* 5 slots a level */
  lua_pushnil(L);
  if (!lua_next(L, idx)) { /* an empty table */
    if (w->empty_arrays) mark_array(w, idx);
    return;
  }
  if (lua_type(L, -2) == LUA_TNUMBER) { /* cjson gives objects string keys only */
    lua_pop(L, 2);
    walk_array(w, idx, depth);
    return;
  }
  do { /* the key at idx + 1, the value at idx + 2 */
    int t = lua_type(L, -1);
    if (t == LUA_TTABLE) {
      walk(w, idx + 2, depth + 1);
    } else if (t == LUA_TNUMBER) {
      if (push_fixed(w)) { /* key, number, fixed */
        lua_pushvalue(L, -3);
        lua_insert(L, -2);
        lua_rawset(L, idx); /* assigning an existing key is safe during lua_next */
      }
    } else if (t == LUA_TLIGHTUSERDATA && !w->keep_nulls && lua_touserdata(L, -1) == NULL) {
      lua_pushvalue(L, -2);
      lua_pushnil(L);
      lua_rawset(L, idx); /* clearing a field is safe during next */
    }
    lua_pop(L, 1);
  } while (lua_next(L, idx));
}

/* Push the text cjson decodes, the string at idx (s, len) itself or a copy
 * with placeholders (see above), and set how the walk finds the empty
 * arrays. Returns 0, or -1 when no sentinel byte is free. */
static int push_marked_text(lua_State *L, int idx, const char *s, size_t len, walker *w) {
  scanner sc;
  if (!may_hold_empty(s, len, '[', ']')) {
    lua_pushvalue(L, idx);
    return 0;
  }
  if (!may_hold_empty(s, len, '{', '}')) {
    w->empty_arrays = 1;
    lua_pushvalue(L, idx);
    return 0;
  }
  scanner_init(&sc, L, s, len);
  scan(&sc);
  if (sc.empty_arrays == 0) { /* (no copy was made) */
    lua_pushvalue(L, idx);
    return 0;
  }
  if (sc.empty_objects == 0) { /* the ones seen were in strings */
    lua_pop(L, 1); /* the copy */
    w->empty_arrays = 1;
    lua_pushvalue(L, idx);
    return 0;
  }
  if (!may_hold_negative_zero(s, len)) {
    push_copy(&sc);
    w->negative_zeros = 1;
    return 0;
  }
  lua_pop(L, 1); /* the copy: a -0 of the document's own would be taken for [] */
  w->sentinel = pick_sentinel(s, len);
  if (w->sentinel < 0) return -1;
  push_with_sentinels(L, s, len, w->sentinel);
  return 0;
}

/* ------------------------------------------------- null members, blanked */

/* Most of what a null member of an object costs is paid before the walk
 * drops it: cjson interns its name and grows the table to hold it. So when
 * nulls are to be left out (the default), a member written "name":null is
 * blanked out of a copy of the text (with one comma next to it) before
 * cjson reads it, wherever that is sure to give what the walk would:
 *   - it is a member of an object: the innermost bracket open outside
 *     strings is a '{', and a '{' or ',' is right before its name;
 *   - its name has no '\\', and between the object's '{' and it there is
 *     neither a '\\' nor the quoted name: no earlier member of the object
 *     can have the same name (with duplicate names the last one wins, so a
 *     null after a value removes the value);
 *   - the object keeps a member: an object of nulls only would come out as
 *     an empty object in the text, which tells empty tables apart;
 *   - what is left is valid JSON exactly when the text was: the member is
 *     followed by ',' and a name, or by '}' with a ',' before it that
 *     follows a value.
 * Any other null member is left to the walk. The scan finds brackets and
 * nulls outside strings the way the empty-array scan above finds brackets. */
#define BLANK_MAX_DEPTH 64

/* A text up to this long is copied on the C stack, a longer one into a
 * userdata: the copy only lives until cjson gets its string, and a
 * luaL_Buffer costs more than the blanking saves on a short document. */
#define BLANK_STACK_COPY 4096

typedef struct {
  scanner sc;                    /* the text and the string state (sc.out unused) */
  char *copy;                    /* the copy, NULL until the first blank */
  char *space;                   /* where the copy goes */
  int depth;                     /* brackets open outside strings */
  size_t open[BLANK_MAX_DEPTH];  /* where the innermost of them opened */
} blanker;

static int is_ws_at(const char *t, size_t i) {
  return is_ws((unsigned char)t[i]);
}

/* The opening quote of the name whose closing quote is at close, or 0 when
 * the name holds a '\\' or a NUL byte (cjson takes NUL in a string for the
 * end of the text: blanking such a name would make a refused text decode)
 * or does not start after from. */
static size_t name_start(const char *s, size_t from, size_t close) {
  size_t q = close;
  while (q > from + 1) {
    q--;
    if (s[q] == '"') return q;
    if (s[q] == '\\' || s[q] == '\0') return 0;
  }
  return 0;
}

/* Does h (hn bytes) hold the quoted name q (qn >= 2 bytes, q[0] == '"')?
 * With SSE2, 16 places at a time are tried for the quote and the byte after
 * it (memmem pays for a table on each call, more than these short stretches
 * cost to search). */
static int holds_name(const char *h, size_t hn, const char *q, size_t qn) {
  size_t i = 0;
  if (hn < qn) return 0;
#ifdef __SSE2__
  for (; i + 17 <= hn; i += 16) {
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(h + i + 1));
    unsigned m = (unsigned)_mm_movemask_epi8(
      _mm_and_si128(_mm_cmpeq_epi8(a, _mm_set1_epi8('"')), _mm_cmpeq_epi8(b, _mm_set1_epi8(q[1]))));
    while (m) {
      size_t at = i + (unsigned)__builtin_ctz(m);
      if (at + qn <= hn && memcmp(h + at, q, qn) == 0) return 1;
      m &= m - 1;
    }
  }
#endif
  for (; i + qn <= hn; i++)
    if (h[i] == '"' && memcmp(h + i, q, qn) == 0) return 1;
  return 0;
}

/* Could an earlier member of the object opened at obj be named as the one
 * whose quoted name is s[key, key + n)? */
static int may_repeat_name(const char *s, size_t obj, size_t key, size_t n) {
  size_t before = key - obj - 1;
  if (memchr(s + obj + 1, '\\', before) != NULL) return 1;
  return holds_name(s + obj + 1, before, s + key, n);
}

/* The text as cjson will read it: the copy once something is blanked. */
static const char *blanker_text(const blanker *bl) {
  return bl->copy ? bl->copy : bl->sc.s;
}

/* Blank [from, to) in the copy, making it first. */
static void blank(blanker *bl, size_t from, size_t to) {
  if (bl->copy == NULL) {
    bl->copy = bl->space;
    memcpy(bl->copy, bl->sc.s, bl->sc.len);
  }
  memset(bl->copy + from, ' ', to - from);
}

/* The last member of its object, "name":null at [key, end) before a '}':
 * blanked with the ',' before it, if a kept member comes before that. */
static void blank_last(blanker *bl, size_t obj, size_t key, size_t end) {
  const char *t = blanker_text(bl);
  size_t comma = key, q;
  while (comma > obj && is_ws_at(t, comma - 1)) comma--; /* earlier blanks */
  if (comma <= obj + 1 || t[comma - 1] != ',') return;    /* '{': the only member */
  q = comma - 1;
  while (q > obj && is_ws_at(t, q - 1)) q--;
  if (t[q - 1] == '{' || t[q - 1] == ',') return;         /* a ',' after no value */
  blank(bl, comma - 1, end);
}

/* A 'n' outside strings at p: a null member to blank? */
static void on_null(blanker *bl, size_t p) {
  const char *s = bl->sc.s;
  size_t len = bl->sc.len, obj, key, end;
  if (bl->depth == 0 || bl->depth > BLANK_MAX_DEPTH) return;
  obj = bl->open[bl->depth - 1];
  if (s[obj] != '{' || p < obj + 4 || len - p < 5 || memcmp(s + p - 2, "\":null", 6) != 0) return;
  key = name_start(s, obj, p - 2);
  if (key == 0 || (s[key - 1] != '{' && s[key - 1] != ',')) return;
  if (may_repeat_name(s, obj, key, p - 1 - key)) return;
  end = p + 4;
  if (s[end] == ',' && end + 1 < len && s[end + 1] == '"') blank(bl, key, end + 1);
  else if (s[end] == '}') blank_last(bl, obj, key, end);
}

/* A bracket or a 'n' outside strings at p. */
/* The bracket at p opens a table: count it when the table is empty. */
static void count_empty(blanker *bl, size_t p) {
  const char *s = bl->sc.s;
  size_t j = p + 1;
  while (j < bl->sc.len && is_ws((unsigned char)s[j])) j++;
  if (j >= bl->sc.len) return;
  if (s[p] == '[' && s[j] == ']') bl->sc.empty_arrays++;
  else if (s[p] == '{' && s[j] == '}') bl->sc.empty_objects++;
}

static inline void on_structure(blanker *bl, size_t p) {
  char c = bl->sc.s[p];
  if (c == '{' || c == '[') {
    /* most open with a quote or a value: only look closer at the others */
    unsigned char next = p + 1 < bl->sc.len ? (unsigned char)bl->sc.s[p + 1] : 0;
    if (next == ']' || next == '}' || next <= ' ') count_empty(bl, p);
    if (bl->depth < BLANK_MAX_DEPTH) bl->open[bl->depth] = p;
    bl->depth++;
  } else if (c == '}' || c == ']') {
    if (bl->depth > 0) bl->depth--;
  } else if (c == 'n') {
    on_null(bl, p);
  }
}

/* Bytes [from, to) one at a time (as scan_bytes). */
static void blank_bytes(blanker *bl, size_t from, size_t to) {
  size_t p;
  for (p = from; p < to; p++) {
    char c = bl->sc.s[p];
    if (outside_string(&bl->sc, p, c) && (c == '{' || c == '[' || c == '}' || c == ']' || c == 'n'))
      on_structure(bl, p);
  }
}

#ifdef __SSE2__
/* ']' and '}' differ only in the bit 0x20 too. */
#define IS_CLOSING(v) _mm_cmpeq_epi8(_mm_or_si128((v), _mm_set1_epi8(0x20)), _mm_set1_epi8('}'))
#define IS_N(v) _mm_cmpeq_epi8((v), _mm_set1_epi8('n'))
/* A bracket or a 'n': one bit mask for the three. */
#define IS_STRUCTURE(v) _mm_or_si128(_mm_or_si128(IS_OPENING(v), IS_CLOSING(v)), IS_N(v))

/* The brackets and 'n's outside strings of the 64 bytes at i (no '\\'). */
static void blank_block(blanker *bl, size_t i, __m128i v0, __m128i v1, __m128i v2, __m128i v3) {
  uint64_t inside = prefix_xor(MASK64(IS_QUOTE, v0, v1, v2, v3)), found;
  if (bl->sc.in_string) inside = ~inside;
  found = MASK64(IS_STRUCTURE, v0, v1, v2, v3) & ~inside;
  while (found) {
    on_structure(bl, i + (unsigned)__builtin_ctzll(found));
    found &= found - 1;
  }
  bl->sc.in_string = (int)(inside >> 63);
}
#endif

static void blank_scan(blanker *bl) {
  size_t i = 0;
#ifdef __SSE2__
  for (; i + 64 <= bl->sc.len; i += 64) {
    const char *p = bl->sc.s + i;
    __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
    __m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 32));
    __m128i v3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 48));
    __m128i backslashes = _mm_or_si128(_mm_or_si128(IS_BACKSLASH(v0), IS_BACKSLASH(v1)),
                                       _mm_or_si128(IS_BACKSLASH(v2), IS_BACKSLASH(v3)));
    if (_mm_movemask_epi8(backslashes) != 0 || bl->sc.escaped == i) blank_bytes(bl, i, i + 64);
    else blank_block(bl, i, v0, v1, v2, v3);
  }
#endif
  blank_bytes(bl, i, bl->sc.len);
}

/* Push the text cjson decodes when nulls are to be left out: the string at
 * idx (s, len), or a copy of it in which null members are blanked (see
 * above), and set how the walk finds the empty arrays, which the same scan
 * counts outside strings. Returns whether a copy was pushed, or -1 (nothing
 * pushed) for push_marked_text to do it: when the text has no "name":null,
 * or both an empty array and an empty object (they need placeholders). */
static int push_blanked_text(lua_State *L, int idx, const char *s, size_t len, walker *w) {
  blanker bl;
  char on_stack[BLANK_STACK_COPY];
  if (memmem(s, len, "\":null", 6) == NULL) return -1;
  scanner_init(&bl.sc, L, s, len);
  bl.copy = NULL;
  bl.space = len <= sizeof on_stack ? on_stack : (char *)lua_newuserdatauv(L, len, 0);
  bl.depth = 0;
  blank_scan(&bl);
  if (bl.sc.empty_arrays > 0 && bl.sc.empty_objects > 0) {
    if (bl.space != on_stack) lua_pop(L, 1);
    return -1;
  }
  w->empty_arrays = bl.sc.empty_objects == 0;
  if (bl.copy != NULL) lua_pushlstring(L, bl.copy, len);
  else lua_pushvalue(L, idx);
  if (bl.space != on_stack) lua_remove(L, -2); /* kept until the string is made */
  return bl.copy != NULL;
}

/* On top: cjson's error for the text with placeholders. Replace it with
 * "invalid JSON: " and cjson's error for the text itself, whose offset and
 * token are the server's (a placeholder is a whole value where an empty
 * array was, so the text fails too, at the same place). */
static void push_decode_error(lua_State *L, int idx, int placeholders) {
  const char *msg;
  if (placeholders && lua_type(L, -1) == LUA_TSTRING) {
    lua_getfield(L, LUA_REGISTRYINDEX, PA_CJSON_DECODE);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK && lua_type(L, -1) == LUA_TSTRING) lua_replace(L, -2);
    else lua_pop(L, 1);
  }
  msg = lua_tostring(L, -1);
  lua_pushfstring(L, "invalid JSON: %s", msg ? msg : "unknown error");
  lua_replace(L, -2);
}

/* pa_json_decode once the array metatable and cjson's decode are pushed
 * (idx is absolute). */
static int decode_pushed(lua_State *L, int idx, int keep_nulls) {
  walker w;
  size_t len;
  const char *s;
  int top, blanked;
  s = lua_tolstring(L, idx, &len);
  w.L = L;
  w.keep_nulls = keep_nulls;
  w.empty_arrays = 0;
  w.negative_zeros = 0;
  w.sentinel = -1;
  blanked = keep_nulls ? -1 : push_blanked_text(L, idx, s, len, &w);
  if (blanked < 0 && push_marked_text(L, idx, s, len, &w) < 0) {
    lua_pop(L, 2);
    lua_pushliteral(L, "invalid JSON: its strings hold every byte that is never UTF-8");
    return 0;
  }
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    /* cjson's message names the byte offset; keep it, it never holds secrets
     * beyond the bytes the server sent, which the caller already has. */
    push_decode_error(L, idx, blanked > 0 || w.negative_zeros || w.sentinel >= 0);
    lua_remove(L, -2); /* the metatable */
    return 0;
  }
  top = lua_gettop(L);
  w.array_mt = top - 1;
  if (lua_type(L, top) == LUA_TTABLE) {
    walk(&w, top, 0);
  } else if (lua_type(L, top) == LUA_TNUMBER && push_fixed(&w)) {
    lua_replace(L, top);
  }
  lua_remove(L, top - 1);
  return 1;
}

int pa_json_decode(lua_State *L, int idx, int keep_nulls) {
  idx = lua_absindex(L, idx);
  pa_json_push_decoders(L);
  return decode_pushed(L, idx, keep_nulls);
}

int pa_json_decode_with(lua_State *L, int idx, int keep_nulls, int array_mt, int cjson_decode) {
  idx = lua_absindex(L, idx);
  lua_pushvalue(L, array_mt);
  lua_pushvalue(L, cjson_decode);
  return decode_pushed(L, idx, keep_nulls);
}

void pa_json_push_decoders(lua_State *L) {
  luaL_getmetatable(L, PA_ARRAY_MT);
  lua_getfield(L, LUA_REGISTRYINDEX, PA_CJSON_DECODE);
}

/* The nulls argument of json_decode and client:decode: nil or "absent"
 * drops null members of objects, "keep" keeps them as planapi.null. */
int pa_json_keep_nulls(lua_State *L, int idx) {
  const char *v;
  if (lua_isnoneornil(L, idx)) return 0;
  if (lua_type(L, idx) == LUA_TTABLE) {
    /* A misspelt key is refused, as for clients and pagers. */
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "nulls") != 0) {
        return pa_error_raise(L, "unknown json.decode option '%s' (valid: nulls)",
                              lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2));
      }
      lua_pop(L, 1);
    }
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
  int keep_nulls;
  luaL_checkstring(L, 1);
  keep_nulls = pa_json_keep_nulls(L, 2);
  lua_settop(L, 1);
  if (!pa_json_decode(L, 1, keep_nulls)) {
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
  lua_pushboolean(L, pa_is_table_of(L, 1, PA_ARRAY_MT));
  return 1;
}

/* require("cjson").new(): a private instance whose settings are ours; its
 * decode goes to the registry, cjson.null to the module table at mod. */
static void open_cjson(lua_State *L, int mod) {
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
}

void pa_json_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"json_encode", l_json_encode}, {"json_decode", l_json_decode},
                                 {"array", l_array},             {"is_array", l_is_array},
                                 {NULL, NULL}};
  static const pa_class array_class = {PA_ARRAY_MT, NULL, NULL, NULL, NULL};
  pa_module_add(L, &array_class, fns);
  luaL_getmetatable(L, PA_ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  open_cjson(L, lua_gettop(L));
}
