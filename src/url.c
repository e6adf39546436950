/* url.c: which URLs a client may talk to, and query-string encoding.
 *
 * Secure by default: https only. Plain http is allowed only to a loopback
 * host (a sandbox, a local proxy) and only when the user asked for it,
 * because a token sent over http to anywhere else is a token given away. */
#include "url.h"

#include <curl/curl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "luax.h"

/* A dotted IPv4 literal in 127.0.0.0/8. Names other than "localhost" are
 * not trusted: "127.0.0.1.example.com" is a domain, not a loopback. */
static int is_loopback_v4(const char *h) {
  int parts = 0;
  const char *p = h;
  if (strncmp(h, "127.", 4) != 0) return 0;
  while (*p) {
    int digits = 0;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
      v = v * 10 + (*p - '0');
      if (++digits > 3 || v > 255) return 0;
      p++;
    }
    if (digits == 0) return 0;
    parts++;
    if (*p == '.') p++;
    else if (*p) return 0;
  }
  return parts == 4;
}

int pa_url_is_loopback_host(const char *host) {
  return strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
         strcmp(host, "::1") == 0 || is_loopback_v4(host);
}

int pa_url_check(const char *url, int allow_http, char *err, size_t errlen) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL;
  int ok = 0;
  if (u == NULL) {
    snprintf(err, errlen, "out of memory");
    return 0;
  }
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
    snprintf(err, errlen, "not a valid absolute URL: %.200s", url);
  } else if (strcmp(scheme, "https") == 0) {
    ok = 1;
  } else if (strcmp(scheme, "http") == 0) {
    if (!pa_url_is_loopback_host(host))
      snprintf(err, errlen, "plain http:// is refused for %.100s: only https, or http to a "
                            "loopback host with allow_http = true", host);
    else if (!allow_http)
      snprintf(err, errlen, "plain http:// to %.100s needs allow_http = true", host);
    else
      ok = 1;
  } else {
    snprintf(err, errlen, "unsupported URL scheme %.20s: only https", scheme);
  }
  curl_free(scheme);
  curl_free(host);
  curl_url_cleanup(u);
  return ok;
}

/* A plain authority: host name or IP literal and port, nothing that could
 * make two parsers disagree on where the host ends ('@', '%', '\\'). */
static int plain_authority_byte(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
         ch == '-' || ch == ':' || ch == '[' || ch == ']';
}

size_t pa_url_origin_len(const char *base) {
  const char *p = strstr(base, "://");
  if (p == NULL) return 0;
  for (p += 3; *p != '/'; p++)
    if (!plain_authority_byte(*p)) return 0;
  return (size_t)(p - base) + 1;
}

/* Any byte of x below 0x21, or equal to 0x7f (the "has less" and "has
 * zero" word tricks): never a miss; a hit is confirmed byte by byte. */
static int word_may_refuse(uint64_t x) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  uint64_t del = x ^ (ones * 0x7f);
  return ((((x - ones * 0x21) & ~x) | ((del - ones) & ~del)) & highs) != 0;
}

/* Bytes libcurl's URL parser refuses anywhere (a space, a control byte).
 * Eight bytes a step: this runs on every URL of every request, twice. */
static int has_refused_byte(const char *s) {
  size_t i = 0, n = strlen(s);
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    memcpy(&x, s + i, 8);
    if (word_may_refuse(x)) break;
  }
  for (; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f) return 1;
  return 0;
}

int pa_url_check_under(const char *url, const char *base, size_t origin_len, int allow_http, char *err,
                       size_t errlen) {
  if (origin_len > 0 && strncmp(url, base, origin_len) == 0 && !has_refused_byte(url + origin_len)) return 1;
  return pa_url_check(url, allow_http, err, errlen);
}

/* RFC 3986 unreserved characters, the bytes that pass unescaped, as a
 * bitmap (one test per byte of every path and query): '-', '.' and '0'-'9'
 * in the first word; 'A'-'Z', '_', 'a'-'z' and '~' in the second. */
static inline int unreserved(unsigned char c) {
  static const uint64_t map[4] = {0x03FF600000000000u, 0x47FFFFFE87FFFFFEu, 0, 0};
  return (int)((map[c >> 6] >> (c & 63)) & 1);
}

/* Unreserved characters pass; everything else is %XX. */
void pa_url_escape(pa_buf *b, const char *s, size_t len, int *oom) {
  static const char hex[] = "0123456789ABCDEF";
  size_t i;
  if (!pa_buf_reserve(b, len * 3)) {
    *oom = 1;
    return;
  }
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (unreserved(c)) {
      b->p[b->len++] = (char)c;
    } else {
      b->p[b->len++] = '%';
      b->p[b->len++] = hex[c >> 4];
      b->p[b->len++] = hex[c & 15];
    }
  }
}

/* One scalar query value as text: strings and numbers as they are,
 * booleans as true/false (what Planfix's silent=true expects). */
static const char *scalar_text(lua_State *L, int idx, size_t *len, char *tmp, size_t tmplen) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING: return lua_tolstring(L, idx, len);
    case LUA_TBOOLEAN:
      *len = lua_toboolean(L, idx) ? 4 : 5;
      return lua_toboolean(L, idx) ? "true" : "false";
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx))
        *len = (size_t)snprintf(tmp, tmplen, "%lld", (long long)lua_tointeger(L, idx));
      else {
        lua_Number n = lua_tonumber(L, idx);
        /* NaN and infinity have no query form (it would be "-nan"), as they
         * have no JSON or XML form: the caller raises. The range check comes
         * before the cast, which is undefined for 1e300. */
        if (isnan(n) || isinf(n)) return NULL;
        if (n == floor(n) && fabs(n) < 9007199254740992.0)
          *len = (size_t)snprintf(tmp, tmplen, "%lld", (long long)n);
        else
          *len = pa_number_text(tmp, tmplen, (double)n);
      }
      return tmp;
    default: return NULL;
  }
}

static void add_pair(lua_State *L, pa_buf *b, const pa_key *k, int vidx) {
  char tmp[40];
  size_t vlen;
  int oom = 0;
  const char *v = scalar_text(L, vidx, &vlen, tmp, sizeof tmp);
  if (v == NULL && lua_type(L, vidx) == LUA_TNUMBER)
    pa_error_raise(L, "query parameter '%s' is %s, which has no query form", k->s,
                   isnan((double)lua_tonumber(L, vidx)) ? "NaN" : "infinite");
  if (v == NULL)
    pa_error_raise(L, "query parameter '%s' must be a string, number, boolean or a list of them "
                      "(got %s)", k->s, luaL_typename(L, vidx));
  if (b->len > 0 && !pa_buf_add(b, "&", 1)) oom = 1;
  pa_url_escape(b, k->s, k->len, &oom);
  if (!pa_buf_add(b, "=", 1)) oom = 1;
  pa_url_escape(b, v, vlen, &oom);
  if (oom) luaL_error(L, "out of memory");
}

void pa_query_encode(lua_State *L, int idx, pa_buf *b) {
  size_t n = 0, i;
  pa_key *keys;
  idx = lua_absindex(L, idx);
  keys = pa_sorted_keys(L, idx, &n); /* sorted: the same parameters, the same URL */
  if (keys == NULL) {
    pa_error_raise(L, "query parameter names must be strings (got %s)", luaL_typename(L, -1));
    return; /* not reached */
  }
  for (i = 0; i < n; i++) {
    lua_pushlstring(L, keys[i].s, keys[i].len);
    lua_rawget(L, idx);
    if (lua_type(L, -1) == LUA_TTABLE) {
      /* A list repeats the key: status[]=a&status[]=b (the caller names the key). */
      size_t j, m = lua_rawlen(L, -1);
      for (j = 1; j <= m; j++) {
        lua_rawgeti(L, -1, (lua_Integer)j);
        add_pair(L, b, &keys[i], lua_gettop(L));
        lua_pop(L, 1);
      }
    } else {
      add_pair(L, b, &keys[i], lua_gettop(L));
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static int escapes_to_itself(const char *s, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    if (!unreserved((unsigned char)s[i])) return 0;
  return 1;
}

/* The text of a path segment (scalar_text), raising for NaN and infinity. */
static const char *segment_text(lua_State *L, int idx, size_t *len, char *tmp, size_t tmplen) {
  const char *s = scalar_text(L, idx, len, tmp, tmplen);
  if (s == NULL && lua_type(L, idx) == LUA_TNUMBER)
    pa_error_raise(L, "url_escape: NaN and infinity have no query form");
  return s;
}

static int l_url_escape(lua_State *L) {
  size_t len;
  const char *s;
  char tmp[40];
  pa_buf *b;
  int oom = 0;
  luaL_checkany(L, 1);
  s = segment_text(L, 1, &len, tmp, sizeof tmp);
  if (s == NULL) return luaL_argerror(L, 1, "string, number or boolean expected");
  if (lua_type(L, 1) == LUA_TSTRING && escapes_to_itself(s, len)) {
    lua_settop(L, 1); /* an id or a uuid, the usual path segment: no copy */
    return 1;
  }
  b = pa_buf_push_owned(L);
  pa_url_escape(b, s, len, &oom);
  if (oom) return luaL_error(L, "out of memory");
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  return 1;
}

/* core.url_join(path, ref) -> path .. "/" .. url_escape(ref), made at
 * once (a resource's path by its id: "jobs/<uuid>"); nil when ref is
 * neither a string nor a number, for the caller to name the mistake. */
static int l_url_join(lua_State *L) {
  size_t plen, len;
  const char *path = luaL_checklstring(L, 1, &plen), *s;
  char tmp[40], joined[256];
  pa_buf *b;
  int oom = 0;
  if (lua_type(L, 2) != LUA_TSTRING && lua_type(L, 2) != LUA_TNUMBER) return 0;
  s = segment_text(L, 2, &len, tmp, sizeof tmp);
  if (plen + 1 + len <= sizeof joined && escapes_to_itself(s, len)) { /* an id or a uuid */
    memcpy(joined, path, plen);
    joined[plen] = '/';
    memcpy(joined + plen + 1, s, len);
    lua_pushlstring(L, joined, plen + 1 + len);
    return 1;
  }
  b = pa_buf_push_owned(L);
  if (!pa_buf_add(b, path, plen) || !pa_buf_add(b, "/", 1)) oom = 1;
  pa_url_escape(b, s, len, &oom);
  if (oom) return luaL_error(L, "out of memory");
  lua_pushlstring(L, b->p, b->len);
  return 1;
}

static int l_encode_query(lua_State *L) {
  pa_buf *b;
  luaL_checktype(L, 1, LUA_TTABLE);
  b = pa_buf_push_owned(L);
  pa_query_encode(L, 1, b);
  lua_pushlstring(L, b->p ? b->p : "", b->len);
  return 1;
}

static int l_check_url(lua_State *L) {
  char err[256];
  const char *url = luaL_checkstring(L, 1);
  if (pa_url_check(url, lua_toboolean(L, 2), err, sizeof err)) {
    lua_pushboolean(L, 1);
    return 1;
  }
  return pa_error_return(L, "config", err);
}

void pa_url_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"url_escape", l_url_escape}, {"url_join", l_url_join}, {"encode_query", l_encode_query},
      {"check_url", l_check_url},   {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
