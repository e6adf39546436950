/* redact.c: masking secrets in text before it is cut or shown.
 *
 * Cutting first and redacting after lets a part of a secret through: a
 * server page that echoes "Authorization: Bearer <token>" cut to an 80-byte
 * snippet keeps half the token, which no whole-string search finds. So the
 * whole text is searched first, and a match is not only a whole secret:
 *   - every run of PA_REDACT_WINDOW or more characters of a secret, wherever
 *     it is (what a server that cut or wrapped the echo leaves);
 *   - a secret's prefix (suffix) of PA_REDACT_EDGE or more characters at the
 *     end (start) of the text or at the cut: the rest of a secret cut there;
 *   - each secret as it would be echoed: raw, JSON-escaped (with and without
 *     "\/"), URL-encoded and XML-escaped.
 * Secrets of PA_REDACT_MIN..PA_REDACT_WINDOW-1 characters are masked whole
 * and at the edges only: shorter runs of text match too much ordinary text. */
#include "redact.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"

typedef struct {
  const unsigned char *s;
  size_t len;
} variant;

static int url_safe(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

/* One character of a JSON string as lua-cjson writes it (slash: "\/"). */
static void add_json(luaL_Buffer *b, unsigned char c, int slash) {
  if (c == '"' || c == '\\' || (c == '/' && slash)) {
    luaL_addchar(b, '\\');
    luaL_addchar(b, (char)c);
  } else if (c == '\t') {
    luaL_addstring(b, "\\t");
  } else if (c < 0x20 || c == 0x7f) {
    char u[8];
    snprintf(u, sizeof u, "\\u%04x", (unsigned)c);
    luaL_addstring(b, u);
  } else {
    luaL_addchar(b, (char)c);
  }
}

static void add_url(luaL_Buffer *b, unsigned char c) {
  static const char hex[] = "0123456789ABCDEF";
  if (url_safe(c)) {
    luaL_addchar(b, (char)c);
    return;
  }
  luaL_addchar(b, '%');
  luaL_addchar(b, hex[c >> 4]);
  luaL_addchar(b, hex[c & 15]);
}

static void add_xml(luaL_Buffer *b, unsigned char c) {
  switch (c) {
  case '&': luaL_addstring(b, "&amp;"); break;
  case '<': luaL_addstring(b, "&lt;"); break;
  case '>': luaL_addstring(b, "&gt;"); break;
  case '"': luaL_addstring(b, "&quot;"); break;
  case '\'': luaL_addstring(b, "&apos;"); break;
  default: luaL_addchar(b, (char)c);
  }
}

enum form { FORM_JSON, FORM_JSON_NOSLASH, FORM_URL, FORM_XML, FORM_COUNT };

static void push_encoded(lua_State *L, const char *s, size_t len, int form) {
  luaL_Buffer b;
  size_t i;
  luaL_buffinit(L, &b);
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (form == FORM_JSON || form == FORM_JSON_NOSLASH)
      add_json(&b, c, form == FORM_JSON);
    else if (form == FORM_URL)
      add_url(&b, c);
    else
      add_xml(&b, c);
  }
  luaL_pushresult(&b);
}

/* Push the secret at the top's forms after it (only those that differ). */
static void push_forms(lua_State *L) {
  int raw = lua_gettop(L), form, k;
  size_t len;
  const char *s = lua_tolstring(L, raw, &len);
  for (form = 0; form < FORM_COUNT; form++) {
    int dup = 0;
    push_encoded(L, s, len, form);
    for (k = raw; k < lua_gettop(L) && !dup; k++) dup = lua_rawequal(L, k, -1);
    if (dup) lua_pop(L, 1);
  }
}

/* ------------------------------------------------------- the window set */

static uint64_t window_key(const unsigned char *p) {
  /* six bytes and a presence bit: 0 is an empty slot */
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
         (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)1 << 48;
}

static size_t window_slot(uint64_t key, size_t mask) {
  return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

static void set_add(uint64_t *set, size_t mask, uint64_t key) {
  size_t i = window_slot(key, mask);
  while (set[i] != 0 && set[i] != key) i = (i + 1) & mask;
  set[i] = key;
}

static int set_has(const uint64_t *set, size_t mask, uint64_t key) {
  size_t i = window_slot(key, mask);
  while (set[i] != 0) {
    if (set[i] == key) return 1;
    i = (i + 1) & mask;
  }
  return 0;
}

/* ------------------------------------------------------------- marking */

/* Whole occurrences of the short secrets (the windows cover the others). */
static void mark_whole(const unsigned char *t, size_t scan, unsigned char *marks, const variant *v) {
  size_t i;
  if (v->len >= PA_REDACT_WINDOW || v->len > scan) return;
  for (i = 0; i + v->len <= scan; i++)
    if (t[i] == v->s[0] && memcmp(t + i, v->s, v->len) == 0) memset(marks + i, 1, v->len);
}

/* The text shown ends (at `end`) with the start of a secret, or starts with
 * its end: what remains of a secret cut there. A text that is nothing but
 * such a piece is left alone: a short code ("0005") that happens to start a
 * session id is no remnant of a cut. */
static void mark_edges(const unsigned char *t, size_t end, unsigned char *marks, const variant *v) {
  size_t k, top = v->len - 1;
  if (end == 0) return;
  if (top > end - 1) top = end - 1;
  for (k = top; k >= PA_REDACT_EDGE; k--) {
    if (memcmp(t + end - k, v->s, k) == 0) {
      memset(marks + end - k, 1, k);
      break;
    }
  }
  for (k = top; k >= PA_REDACT_EDGE; k--) {
    if (memcmp(t, v->s + v->len - k, k) == 0) {
      memset(marks, 1, k);
      break;
    }
  }
}

static void mark_windows(const unsigned char *t, size_t scan, unsigned char *marks, const uint64_t *set,
                         size_t mask) {
  size_t i;
  for (i = 0; i + PA_REDACT_WINDOW <= scan; i++)
    if (set_has(set, mask, window_key(t + i))) memset(marks + i, 1, PA_REDACT_WINDOW);
}

/* Where the text shown ends: max bytes, backed off to a character start. */
static size_t cut_at(const unsigned char *t, size_t len, size_t max) {
  size_t cut = max;
  if (max == 0 || max >= len) return len;
  while (cut > 0 && (t[cut] & 0xC0) == 0x80) cut--;
  return cut;
}

void pa_redact_push(lua_State *L, int secrets, const char *text, size_t len, size_t max) {
  const unsigned char *t = (const unsigned char *)text;
  int base, k, nv;
  size_t i, n = 0, longest = 0, windows = 0, size = 16, cut, scan;
  variant *v;
  unsigned char *marks;
  uint64_t *set;
  luaL_Buffer b;

  if (secrets != 0) secrets = lua_absindex(L, secrets);
  base = lua_gettop(L);
  if (secrets != 0 && lua_istable(L, secrets)) n = lua_rawlen(L, secrets);
  luaL_checkstack(L, (int)(FORM_COUNT + 8), "redact");
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, secrets, (lua_Integer)i);
    if (lua_type(L, -1) != LUA_TSTRING || lua_rawlen(L, -1) < PA_REDACT_MIN) {
      lua_pop(L, 1);
      continue;
    }
    luaL_checkstack(L, FORM_COUNT + 8, "redact");
    push_forms(L);
  }
  nv = lua_gettop(L) - base;

  /* Scratch memory lives on the stack (collected even if a push fails). */
  v = (variant *)lua_newuserdatauv(L, (size_t)(nv > 0 ? nv : 1) * sizeof *v, 0);
  for (k = 0; k < nv; k++) {
    size_t vl;
    v[k].s = (const unsigned char *)lua_tolstring(L, base + 1 + k, &vl);
    v[k].len = vl;
    if (vl > longest) longest = vl;
    if (vl >= PA_REDACT_WINDOW) windows += vl - PA_REDACT_WINDOW + 1;
  }
  cut = cut_at(t, len, max);
  /* Past the cut, only what could still overlap the text shown. */
  scan = cut < len && len - cut > longest ? cut + longest : len;
  marks = (unsigned char *)lua_newuserdatauv(L, scan + 1, 0);
  memset(marks, 0, scan + 1);
  while (size < 2 * windows) size <<= 1;
  set = (uint64_t *)lua_newuserdatauv(L, size * sizeof *set, 0);
  memset(set, 0, size * sizeof *set);

  for (k = 0; k < nv; k++) {
    for (i = 0; i + PA_REDACT_WINDOW <= v[k].len; i++) set_add(set, size - 1, window_key(v[k].s + i));
    mark_whole(t, scan, marks, &v[k]);
    mark_edges(t, cut, marks, &v[k]);
  }
  if (windows > 0) mark_windows(t, scan, marks, set, size - 1);

  luaL_buffinit(L, &b);
  for (i = 0; i < cut;) {
    size_t j = i;
    if (marks[i]) {
      luaL_addstring(&b, "***");
      while (i < cut && marks[i]) i++;
      continue;
    }
    while (j < cut && !marks[j]) j++;
    luaL_addlstring(&b, text + i, j - i);
    i = j;
  }
  if (cut < len) luaL_addstring(&b, "...");
  luaL_pushresult(&b);
  lua_replace(L, base + 1);
  lua_settop(L, base + 1);
}

/* core.redact(text, secrets [, max]) -> text with the secrets masked, cut
 * to max bytes: for text planapi shows that no C client made (the webhook
 * receiver, the Redis limiter). */
static int l_redact(lua_State *L) {
  size_t len;
  const char *text;
  lua_Number max = 0;
  if (lua_type(L, 1) != LUA_TSTRING) return pa_error_raise(L, "redact: the text must be a string");
  text = lua_tolstring(L, 1, &len);
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    return pa_error_raise(L, "redact: the secrets must be a list of strings");
  if (!lua_isnoneornil(L, 3)) {
    max = lua_tonumber(L, 3);
    if (lua_type(L, 3) != LUA_TNUMBER || !(max >= 0 && max < 1e15))
      return pa_error_raise(L, "redact: max must be a length in bytes (0: no cut)");
  }
  pa_redact_push(L, lua_isnoneornil(L, 2) ? 0 : 2, text, len, (size_t)max);
  return 1;
}

void pa_redact_open(lua_State *L) {
  lua_pushcfunction(L, l_redact);
  lua_setfield(L, -2, "redact");
}
