/* client.c: the userdata client: configuration, the pure halves
 * (prepare: request spec -> wire request; decode: response -> Lua value)
 * and the lifecycle. It knows no transport: the I/O half, perform, is
 * added to its methods by transport_curl.c, which uses client.h.
 *
 * prepare and decode never do I/O, so the same client serves libcurl, an
 * nginx cosocket transport or a host's own event loop: Lua composes
 * prepare -> any transport -> decode (see docs/ARCHITECTURE.md). */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errors.h"
#include "json.h"
#include "luax.h"
#include "redact.h"
#include "url.h"

#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_TIMEOUT 90.0 /* Planfix list calls with wide filters take 40-49 s */
#define DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)

pa_client *pa_client_check(lua_State *L, int idx) {
  return (pa_client *)luaL_checkudata(L, idx, PA_CLIENT_MT);
}

static pa_client *open_or_raise(lua_State *L, pa_client *c) {
  if (c->closed) pa_error_raise(L, "the client is closed");
  return c;
}

pa_client *pa_client_check_open(lua_State *L, int idx) {
  return open_or_raise(L, pa_client_check(L, idx));
}

/* pa_client_check(L, 1) for a method that holds the client metatable as
 * its upvalue up: compared with it, not looked up in the registry by name;
 * anything else goes to pa_client_check for its error. */
pa_client *pa_client_check_up(lua_State *L, int up) {
  pa_client *c = (pa_client *)pa_udata_with_mt(L, 1, lua_upvalueindex(up));
  return c != NULL ? c : pa_client_check(L, 1);
}

pa_client *pa_client_check_open_up(lua_State *L, int up) {
  return open_or_raise(L, pa_client_check_up(L, up));
}

static char *dup_or_raise(lua_State *L, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = (char *)malloc(n);
  if (p == NULL) {
    luaL_error(L, "out of memory");
    return NULL; /* not reached: luaL_error does not return */
  }
  memcpy(p, s, n);
  return p;
}

/* The one destroy: close(), __gc and __close all end here, any number of times. */
static void client_destroy(pa_client *c) {
  if (c->closed) return;
  c->closed = 1;
  if (c->transport_free != NULL) c->transport_free(c->transport);
  c->transport = NULL;
  c->transport_free = NULL;
  free(c->base_url);
  free(c->ca_file);
  free(c->proxy);
  free(c->user_agent);
  c->base_url = c->ca_file = c->proxy = c->user_agent = NULL;
}

static int client_close(lua_State *L) {
  client_destroy(pa_client_check(L, 1));
  return 0;
}

/* ------------------------------------------------------------ options */

/* A header name is an RFC 9110 token; a value has no CR, LF or NUL, which
 * would let data from a caller split the request (header injection). */
/* A token character (RFC 9110 tchar): a visible ASCII byte but a delimiter. */
static int is_tchar(unsigned char ch) {
  static const char delimiters[] = "\"(),/:;<=>?@[\\]{}";
  return ch > 32 && ch < 127 && memchr(delimiters, ch, sizeof delimiters - 1) == NULL;
}

static void check_header(lua_State *L, const char *name, size_t nlen, const char *value,
                         size_t vlen) {
  size_t i;
  if (nlen == 0) pa_error_raise(L, "header name is empty");
  for (i = 0; i < nlen; i++) {
    unsigned char ch = (unsigned char)name[i];
    /* letters, digits and '-' (every header name in practice) need no search */
    if (!((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') && !(ch >= '0' && ch <= '9') && ch != '-' && !is_tchar(ch))
      pa_error_raise(L, "header name '%s' has a character not allowed in a header name", name);
  }
  /* (memchr, not strpbrk: a NUL ends no Lua string) */
  if (memchr(value, '\r', vlen) || memchr(value, '\n', vlen) || memchr(value, '\0', vlen))
    pa_error_raise(L, "header '%s' has CR, LF or NUL in its value", name);
}

void pa_client_check_header_entry(lua_State *L) {
  size_t nlen, vlen;
  const char *name, *value;
  if (lua_type(L, -2) != LUA_TSTRING) pa_error_raise(L, "header names must be strings");
  if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER &&
      !(lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)))
    pa_error_raise(L, "header '%s' must be a string (or false to drop it)", lua_tostring(L, -2));
  name = lua_tolstring(L, -2, &nlen);
  if (lua_type(L, -1) == LUA_TBOOLEAN) {
    value = "";
    vlen = 0;
  } else {
    lua_pushvalue(L, -1); /* tolstring on a copy: never convert during next */
    value = lua_tolstring(L, -1, &vlen);
    lua_pop(L, 1);
  }
  check_header(L, name, nlen, value, vlen);
}

/* Validate a headers table (name -> string or number); raises on a bad entry. */
void pa_client_check_headers(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    pa_client_check_header_entry(L);
    lua_pop(L, 1);
  }
}


/* The options of core.client{...}, checked, before anything is allocated. */
typedef struct {
  const char *base_url, *ca_file, *proxy, *user_agent;
  int allow_http, proxy_mode;
  double connect_timeout, timeout;
  lua_Number max_body;
} client_options;

static void read_max_body(lua_State *L, client_options *o) {
  o->max_body = (lua_Number)DEFAULT_MAX_BODY;
  lua_getfield(L, 1, "max_body");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) < 1)
      pa_error_raise(L, "option 'max_body' must be a positive number of bytes");
    o->max_body = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
}

static void read_proxy(lua_State *L, client_options *o) {
  o->proxy = NULL;
  o->proxy_mode = 0;
  lua_getfield(L, 1, "proxy");
  if (lua_type(L, -1) == LUA_TSTRING) {
    o->proxy_mode = 1;
    o->proxy = lua_tostring(L, -1); /* stays alive in the options table */
  } else if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    o->proxy_mode = 2;
  } else if (!lua_isnil(L, -1)) {
    pa_error_raise(L, "option 'proxy' must be a URL string, or false for no proxy");
  }
  lua_pop(L, 1);
}

/* The user's User-Agent, or NULL: then each transport names itself. */
static const char *read_user_agent(lua_State *L) {
  const char *ua = pa_opt_string(L, 1, "user_agent");
  if (ua != NULL) check_header(L, "User-Agent", 10, ua, strlen(ua));
  return ua;
}

static void read_options(lua_State *L, client_options *o) {
  char err[256];
  luaL_checktype(L, 1, LUA_TTABLE);
  o->base_url = pa_opt_string(L, 1, "base_url");
  if (o->base_url == NULL) pa_error_raise(L, "option 'base_url' is required");
  lua_getfield(L, 1, "allow_http");
  o->allow_http = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!pa_url_check(o->base_url, o->allow_http, err, sizeof err)) pa_error_raise(L, "base_url: %s", err);
  o->connect_timeout = pa_opt_seconds(L, 1, "connect_timeout", DEFAULT_CONNECT_TIMEOUT);
  o->timeout = pa_opt_seconds(L, 1, "timeout", DEFAULT_TIMEOUT);
  read_max_body(L, o);
  o->ca_file = pa_opt_string(L, 1, "ca_file");
  if (o->ca_file != NULL) {
    FILE *f = fopen(o->ca_file, "rb");
    if (f == NULL) pa_error_raise(L, "option 'ca_file': cannot read %s", o->ca_file);
    fclose(f);
  }
  lua_getfield(L, 1, "headers");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    pa_client_check_headers(L, -1);
  }
  lua_pop(L, 1);
  read_proxy(L, o);
  o->user_agent = read_user_agent(L);
}

/* base_url with a '/' at its end, so relative paths join under it. */
static char *dup_base_url(lua_State *L, const char *base) {
  size_t blen = strlen(base);
  char *p = (char *)malloc(blen + 2);
  if (p == NULL) {
    luaL_error(L, "out of memory");
    return NULL; /* not reached */
  }
  memcpy(p, base, blen + 1);
  if (blen == 0 || base[blen - 1] != '/') {
    p[blen] = '/';
    p[blen + 1] = '\0';
  }
  return p;
}

/* The userdata, its strings copied into C memory that close() frees. */
static pa_client *push_client(lua_State *L, const client_options *o) {
  pa_client *c = (pa_client *)lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  c->closed = 1; /* until fully built, destroy has nothing to free twice */
  luaL_setmetatable(L, PA_CLIENT_MT);
  c->closed = 0;
  c->allow_http = o->allow_http;
  c->connect_timeout_ms = (long)(o->connect_timeout * 1000.0);
  c->timeout_ms = (long)(o->timeout * 1000.0);
  c->max_body = (size_t)o->max_body;
  c->proxy_mode = o->proxy_mode;
  c->base_url = dup_base_url(L, o->base_url);
  c->origin_len = pa_url_origin_len(c->base_url);
  if (o->ca_file != NULL) c->ca_file = dup_or_raise(L, o->ca_file);
  if (o->proxy != NULL) c->proxy = dup_or_raise(L, o->proxy);
  if (o->user_agent != NULL) c->user_agent = dup_or_raise(L, o->user_agent);
  return c;
}

/* Push a copy of the default headers of the options. */
static void push_default_headers(lua_State *L) {
  lua_newtable(L);
  lua_getfield(L, 1, "headers");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -5);
    }
  }
  lua_pop(L, 1);
}

/* The default headers into the user value table at uv as a flat list
 * (name, value, name, value...) in the order a copy of them iterates in,
 * numbers as text and false ones (no such header) left out: each request
 * copies them by index, with no table walk and no name compared. Their
 * number and whether an Accept is among them go to c. */
static void keep_default_headers(lua_State *L, pa_client *c, int uv) {
  int i = 0;
  push_default_headers(L);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_type(L, -1) == LUA_TBOOLEAN) { /* false: checked by read_options */
      lua_pop(L, 1);
      continue;
    }
    if (lua_type(L, -1) == LUA_TNUMBER) lua_tostring(L, -1); /* the value: next reads only the key */
    if (strcasecmp(lua_tostring(L, -2), "Accept") == 0) c->default_accept = 1;
    lua_pushvalue(L, -2);
    lua_rawseti(L, uv, ++i);
    lua_rawseti(L, uv, ++i);
  }
  lua_pop(L, 1);
  c->default_headers = i / 2;
}

/* Push the list of secrets to redact from the options. */
static void push_secrets(lua_State *L) {
  lua_newtable(L);
  lua_getfield(L, 1, "secrets");
  if (lua_istable(L, -1)) {
    size_t i, n = lua_rawlen(L, -1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(L, -1, (lua_Integer)i);
      /* Very short strings would redact ordinary words; a real secret is longer. */
      if (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) >= PA_REDACT_MIN)
        lua_rawseti(L, -3, (lua_Integer)lua_rawlen(L, -3) + 1);
      else
        lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    pa_error_raise(L, "option 'secrets' must be a list of strings");
  }
  lua_pop(L, 1);
}

/* core.client{ base_url = ..., ... } */
static int client_new(lua_State *L) {
  client_options o;
  pa_client *c;
  read_options(L, &o);
  c = push_client(L, &o);
  /* Anchors: default headers and secrets live in the user value. */
  lua_createtable(L, 2, 1);
  keep_default_headers(L, c, lua_gettop(L));
  push_secrets(L);
  lua_setfield(L, -2, PA_UV_SECRETS);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

/* ------------------------------------------------------------ redaction */

void pa_client_push_redacted_cut(lua_State *L, int idx, const char *text, size_t len, size_t max) {
  idx = lua_absindex(L, idx);
  lua_getiuservalue(L, idx, 1);
  if (lua_istable(L, -1)) lua_getfield(L, -1, PA_UV_SECRETS);
  else lua_pushnil(L);
  pa_redact_push(L, lua_istable(L, -1) ? -1 : 0, text, len, max);
  lua_replace(L, -3);
  lua_pop(L, 1);
}

void pa_client_push_redacted(lua_State *L, int idx, const char *message) {
  pa_client_push_redacted_cut(L, idx, message, strlen(message), 0);
}

/* client:add_secret(s): one more string to redact from every error (a
 * session id learned after the client was made). */
static int client_add_secret(lua_State *L) {
  size_t len;
  pa_client_check(L, 1);
  luaL_checklstring(L, 2, &len);
  if (len < PA_REDACT_MIN) return 0; /* see client_new: too short to be a secret */
  lua_getiuservalue(L, 1, 1);
  lua_getfield(L, -1, PA_UV_SECRETS);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  return 0;
}

/* client:redact(text [, max]): text with the client's secrets masked, then
 * cut to max bytes (redact.c). */
static int client_redact(lua_State *L) {
  size_t len;
  const char *text;
  lua_Number max = 0;
  pa_client_check(L, 1);
  text = luaL_checklstring(L, 2, &len);
  if (!lua_isnoneornil(L, 3)) {
    max = lua_tonumber(L, 3);
    if (lua_type(L, 3) != LUA_TNUMBER || !(max >= 0 && max < 1e15))
      return pa_error_raise(L, "redact: max must be a length in bytes (0: no cut)");
  }
  pa_client_push_redacted_cut(L, 1, text, len, (size_t)max);
  return 1;
}

/* Redact every string in the table at idx, and in the tables it holds (an
 * error's fields: a server's text can reach any of them, not only the
 * message), except `kind`, which names the error. depth bounds a cycle. */
static void redact_fields(lua_State *L, int client, int idx, int depth) {
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -1) == LUA_TSTRING && !(lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "kind") == 0)) {
      size_t len;
      const char *s = lua_tolstring(L, -1, &len);
      pa_client_push_redacted_cut(L, client, s, len, 0);
      lua_pushvalue(L, -3);
      lua_insert(L, -2);
      lua_rawset(L, idx); /* an existing key: safe during lua_next */
    } else if (lua_type(L, -1) == LUA_TTABLE && depth > 0) {
      redact_fields(L, client, -1, depth - 1);
    }
    lua_pop(L, 1);
  }
}

/* client:error{ kind=, message=, ... }: an error whose every string field
 * (message, body, code, ...) is redacted. */
static int client_error(lua_State *L) {
  pa_client_check(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  redact_fields(L, 1, 2, 3);
  lua_getfield(L, lua_upvalueindex(1), "error");
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1);
  return 1;
}

/* ------------------------------------------------------------ prepare */

int pa_client_url_ok(const pa_client *c, const char *url, char *err, size_t errlen) {
  return pa_url_check_under(url, c->base_url, c->origin_len, c->allow_http, err, errlen);
}

static void check_url_ok(lua_State *L, const pa_client *c, const char *url) {
  char err[256];
  if (!pa_client_url_ok(c, url, err, sizeof err)) pa_error_raise(L, "%s", err);
}

static int is_absolute(const char *s) {
  return strncmp(s, "https://", 8) == 0 || strncmp(s, "http://", 7) == 0;
}

/* prepare's upvalues (pa_client_open): the client metatable and the
 * strings every request table holds, made once instead of found by name
 * for each request. */
enum { UP_MT = 1, UP_METHOD, UP_URL, UP_HEADERS, UP_ACCEPT, UP_JSON, UP_OPERATION };
/* UP_METHOD to UP_OPERATION, in that order */
static const char *const prepare_strings[] = {"method", "url", "headers", "Accept", "application/json",
                                              "operation"};
#define PREPARE_STRINGS (sizeof prepare_strings / sizeof prepare_strings[0])
#define UP(i) lua_upvalueindex(i)

/* t[the upvalue key] = the upvalue value (t a fresh table: a raw set is
 * what a set would do). */
static void set_upvalues(lua_State *L, int t, int key, int value) {
  lua_pushvalue(L, UP(key));
  lua_pushvalue(L, UP(value));
  lua_rawset(L, t);
}


/* Copy headers from the table at src into dst, replacing any header of the
 * same name in any letter case (a caller's "authorization" replaces the
 * default "Authorization"); a false value removes it. */
static void merge_headers(lua_State *L, int dst, int src) {
  lua_pushnil(L);
  while (lua_next(L, src)) {
    /* remove a case-insensitive twin from dst */
    lua_pushnil(L);
    while (lua_next(L, dst)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TSTRING &&
          strcasecmp(lua_tostring(L, -1), lua_tostring(L, -3)) == 0) {
        lua_pushvalue(L, -1);
        lua_pushnil(L);
        lua_rawset(L, dst);
        lua_pop(L, 1); /* restart: the table changed shape */
        lua_pushnil(L);
      }
    }
    if (!(lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
      lua_pushvalue(L, -2);
      lua_pushvalue(L, -2);
      if (lua_type(L, -1) == LUA_TNUMBER) lua_tostring(L, -1);
      lua_rawset(L, dst);
    }
    lua_pop(L, 1);
  }
}

/* Copy the client's default headers (checked, as text, when the client was
 * made: keep_default_headers) into the request's empty header table at
 * dst: no twin to look for. */
static void copy_default_headers(lua_State *L, const pa_client *c, int dst) {
  int i, n = 2 * c->default_headers;
  if (n == 0) return;
  lua_getiuservalue(L, 1, 1);
  for (i = 1; i < n; i += 2) {
    lua_rawgeti(L, -1, i);
    lua_rawgeti(L, -2, i + 1);
    lua_rawset(L, dst);
  }
  lua_pop(L, 1);
}

static int has_header(lua_State *L, int tbl, const char *name) {
  int found = 0;
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && strcasecmp(lua_tostring(L, -1), name) == 0) found = 1;
  }
  return found;
}

/* A request method: upper-case letters only, so nothing can split the request line. */
static void check_method_text(lua_State *L, const char *method) {
  size_t i, mlen = strlen(method);
  if (mlen == 0 || mlen > 16) pa_error_raise(L, "request method '%s' is not valid", method);
  for (i = 0; i < mlen; i++)
    if (method[i] < 'A' || method[i] > 'Z')
      pa_error_raise(L, "request method '%s' must be upper-case letters", method);
}

/* req.method, checked. */
static const char *check_method(lua_State *L) {
  const char *method = pa_opt_string(L, 2, "method");
  if (method == NULL) pa_error_raise(L, "request method is required");
  check_method_text(L, method);
  return method;
}

/* Replace the URL string on top of the stack with it and req.query, when
 * the query encodes to anything (an empty query leaves no '?'). */
static void add_query(lua_State *L) {
  lua_getfield(L, 2, "query");
  if (!lua_isnil(L, -1)) {
    size_t ulen;
    const char *url = lua_tolstring(L, -2, &ulen);
    pa_buf *q;
    luaL_checktype(L, -1, LUA_TTABLE);
    q = pa_buf_push_owned(L); /* a scratch buffer: encoding pushes values in between */
    pa_query_encode(L, -2, q);
    if (q->len > 0) {
      lua_pushlstring(L, url, ulen);
      lua_pushstring(L, memchr(url, '?', ulen) ? "&" : "?");
      lua_pushlstring(L, q->p, q->len);
      lua_concat(L, 3);
      lua_replace(L, -4); /* over the URL */
    }
    lua_pop(L, 1); /* the buffer */
  }
  lua_pop(L, 1);
}

/* Push a .. b .. c as one string: made once, not from strings made first,
 * and for a usual URL from bytes on the C stack (no buffer object). Each
 * part is copied with its NUL, which the next one overwrites. */
static void push_joined(lua_State *L, const char *a, const char *b, const char *c) {
  char joined[512];
  size_t alen = strlen(a), blen = strlen(b), clen = strlen(c);
  luaL_Buffer buf;
  if (alen + blen + clen < sizeof joined) {
    memcpy(joined, a, alen + 1);
    memcpy(joined + alen, b, blen + 1);
    memcpy(joined + alen + blen, c, clen + 1);
    lua_pushlstring(L, joined, alen + blen + clen);
    return;
  }
  luaL_buffinit(L, &buf);
  luaL_addstring(&buf, a);
  luaL_addstring(&buf, b);
  luaL_addstring(&buf, c);
  luaL_pushresult(&buf);
}

/* Push the URL of a request path under base_url ("/task/1" and "task/1"
 * both join under it), not checked yet. */
static void push_path_url(lua_State *L, const pa_client *c, const char *path) {
  if (is_absolute(path)) pa_error_raise(L, "request path must be relative to base_url");
  while (*path == '/') path++;
  push_joined(L, c->base_url, path, "");
}

/* Push the request's URL, a string: req.url as given, or req.path under
 * base_url; then req.query. *own_host: whether it is under base_url. */
static const char *push_url(lua_State *L, const pa_client *c, int *own_host) {
  const char *path = pa_opt_string(L, 2, "path"), *url = pa_opt_string(L, 2, "url");
  if ((path == NULL) == (url == NULL)) pa_error_raise(L, "request needs exactly one of path or url");
  if (url != NULL) {
    if (!is_absolute(url)) pa_error_raise(L, "request url must be absolute");
    lua_getfield(L, 2, "url");
  } else {
    push_path_url(L, c, path);
  }
  add_query(L);
  url = lua_tostring(L, -1);
  check_url_ok(L, c, url);
  /* a joined URL starts with base_url */
  *own_host = path != NULL || strncmp(url, c->base_url, strlen(c->base_url)) == 0;
  return url;
}

/* Push req = { method = the value at midx, url = the value at uidx } and
 * its header table (req at -2, the headers on top), the client's default
 * headers in it when own_host: they (the Authorization among them) go only
 * to our own API, never to an absolute URL elsewhere such as a presigned
 * download. Returns whether an Accept header is among them. */
static int push_request(lua_State *L, const pa_client *c, int midx, int uidx, int own_host) {
  int req;
  lua_createtable(L, 0, 6);
  req = lua_gettop(L);
  lua_pushvalue(L, UP(UP_METHOD));
  lua_pushvalue(L, midx);
  lua_rawset(L, req);
  lua_pushvalue(L, UP(UP_URL));
  lua_pushvalue(L, uidx);
  lua_rawset(L, req);
  /* No User-Agent: the transport that sends the request adds its own.
   * Room for the usual few headers at once (Authorization, Accept...). */
  lua_createtable(L, 0, 4);
  if (!own_host) return 0;
  copy_default_headers(L, c, req + 1);
  return c->default_accept;
}

/* req.headers = the header table on top (req below it), popped. */
static void set_headers(lua_State *L) {
  lua_pushvalue(L, UP(UP_HEADERS));
  lua_insert(L, -2);
  lua_rawset(L, -3);
}

/* req.body: a string as is, a table as JSON (with its Content-Type). */
static void set_body(lua_State *L, int req, int hdrs) {
  pa_buf *bodyb;
  lua_getfield(L, 2, "body");
  switch (lua_type(L, -1)) {
    case LUA_TNIL: break;
    case LUA_TSTRING:
      lua_pushvalue(L, -1);
      lua_setfield(L, req, "body");
      break;
    case LUA_TTABLE:
      bodyb = pa_buf_push_owned(L);
      pa_json_encode(L, -2, bodyb);
      lua_pushlstring(L, bodyb->p ? bodyb->p : "", bodyb->len);
      lua_setfield(L, req, "body");
      lua_pop(L, 1);
      lua_pushliteral(L, "application/json; charset=utf-8");
      lua_setfield(L, hdrs, "Content-Type");
      break;
    default:
      pa_error_raise(L, "request body must be a table (sent as JSON) or a string");
  }
  lua_pop(L, 1);
}

/* Accept JSON unless a header says otherwise. */
static void add_accept(lua_State *L, int hdrs, int has_accept) {
  if (!has_accept) set_upvalues(L, hdrs, UP_ACCEPT, UP_JSON);
}

/* The caller's content_type and headers over the defaults; Accept JSON
 * unless the caller asked for something else. */
static void add_request_headers(lua_State *L, int hdrs, int has_accept) {
  const char *ctype = pa_opt_string(L, 2, "content_type");
  if (ctype != NULL) {
    check_header(L, "Content-Type", 12, ctype, strlen(ctype));
    lua_pushstring(L, ctype);
    lua_setfield(L, hdrs, "Content-Type");
  }
  lua_getfield(L, 2, "headers");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    pa_client_check_headers(L, -1);
    merge_headers(L, hdrs, lua_gettop(L));
    has_accept = has_header(L, hdrs, "Accept"); /* the caller's may add or drop one */
  }
  lua_pop(L, 1);
  add_accept(L, hdrs, has_accept);
}

/* client:prepare(method, path): the request prepare{ method =, path = }
 * makes, from two arguments instead of a spec table read field by field
 * (most calls name no more), named by them: req.operation = "GET jobs/1"
 * (one leading '/' left out). */
static int prepare_plain(lua_State *L, const pa_client *c) {
  const char *method = pa_arg_string(L, 2, "method"), *path = pa_arg_string(L, 3, "path");
  int has_accept;
  check_method_text(L, method);
  push_path_url(L, c, path);
  check_url_ok(L, c, lua_tostring(L, -1));
  has_accept = push_request(L, c, 2, lua_gettop(L), 1);
  add_accept(L, lua_gettop(L), has_accept);
  set_headers(L);
  lua_pushvalue(L, UP(UP_OPERATION));
  push_joined(L, method, " ", path + (*path == '/'));
  lua_rawset(L, -3);
  return 1;
}

/* client:prepare{ method=, path= | url=, query=, body=, headers=,
 *                 content_type=, timeout= } -> req
 * req = { method, url, headers = {...}, body = string|nil, timeout }
 * client:prepare(method, path): the same as prepare{ method =, path = }. */
static int client_prepare(lua_State *L) {
  pa_client *c = pa_client_check_open_up(L, UP_MT);
  int req, own_host, has_accept;

  if (lua_type(L, 2) == LUA_TSTRING) return prepare_plain(L, c);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_pushstring(L, check_method(L));
  push_url(L, c, &own_host);
  has_accept = push_request(L, c, 3, 4, own_host);
  req = lua_gettop(L) - 1;
  set_body(L, req, req + 1);
  add_request_headers(L, req + 1, has_accept);
  set_headers(L);

  lua_getfield(L, 2, "timeout");
  if (lua_isnil(L, -1)) { /* no field to set: the transport's default */
    lua_pop(L, 1);
    return 1;
  }
  if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) <= 0)
    pa_error_raise(L, "request timeout must be a positive number of seconds");
  lua_setfield(L, req, "timeout");
  return 1;
}

/* ------------------------------------------------------------ decode */

static const char *header_value(lua_State *L, int res, const char *name) {
  const char *v = NULL;
  lua_getfield(L, res, "headers");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, name);
    v = lua_tostring(L, -1); /* anchored in the response table */
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return v;
}

/* Push nil and a decode error (redacted, with the HTTP status); returns 2. */
static int decode_error(lua_State *L, int status, const char *message) {
  lua_pushnil(L);
  pa_client_push_redacted(L, 1, message);
  pa_error_push(L, "decode", lua_tostring(L, -1));
  lua_remove(L, -2);
  if (status) {
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
  }
  return 2;
}

/* Push "expected JSON but got <type>: <start of the body>". The whole body
 * is redacted before the snippet is cut from it: a secret cut in two is no
 * longer found by a whole-string search. */
static void push_not_json(lua_State *L, const char *body, size_t len, const char *ctype) {
  const char *type, *snippet;
  size_t i, n;
  luaL_Buffer b;
  pa_client_push_redacted_cut(L, 1, body, len, 80);
  if (ctype)
    pa_client_push_redacted_cut(L, 1, ctype, strlen(ctype), 100);
  else
    lua_pushliteral(L, "no content type");
  type = lua_tostring(L, -1);
  snippet = lua_tolstring(L, -2, &n);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "expected JSON but got ");
  luaL_addstring(&b, type);
  luaL_addstring(&b, ": ");
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)snippet[i];
    luaL_addchar(&b, (char)((ch < 32 || ch == 127) ? ' ' : ch));
  }
  luaL_pushresult(&b);
}

/* client:decode's upvalues: what it reads on every call, kept so that no
 * name is looked up again (the client metatable, the keys of res, what
 * the JSON decoder needs). */
enum {
  DECODE_UP_MT = 1,
  DECODE_UP_STATUS,
  DECODE_UP_BODY,
  DECODE_UP_ARRAY_MT, /* what pa_json_push_decoders pushes */
  DECODE_UP_CJSON,
  DECODE_UPS = DECODE_UP_CJSON
};

/* client:decode(res [, nulls]) -> value | nil, err: the JSON body of a
 * response (nulls: see pa_json_keep_nulls).
 * An empty body decodes to an empty table (Planfix answers some updates
 * with no body); a body that is not JSON is a decode error showing the
 * start of what came instead (a proxy's HTML page, say). */
static int client_decode(lua_State *L) {
  size_t len, start = 0;
  const char *body;
  int status, keep_nulls;
  pa_client_check_up(L, DECODE_UP_MT);
  luaL_checktype(L, 2, LUA_TTABLE);
  keep_nulls = pa_json_keep_nulls(L, 3);
  lua_pushvalue(L, lua_upvalueindex(DECODE_UP_STATUS));
  lua_gettable(L, 2);
  status = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(DECODE_UP_BODY));
  lua_gettable(L, 2);
  body = lua_tolstring(L, -1, &len);
  if (body == NULL) body = "", len = 0;
  /* (not strchr: it would take a NUL byte for whitespace) */
  while (start < len && (body[start] == ' ' || body[start] == '\t' || body[start] == '\r' || body[start] == '\n'))
    start++;
  if (start == len) {
    lua_newtable(L);
    return 1;
  }
  if (body[start] != '{' && body[start] != '[') { /* JSON only if the Content-Type says so */
    const char *ctype = header_value(L, 2, "content-type");
    if (!(ctype && strstr(ctype, "json"))) {
      push_not_json(L, body + start, len - start, ctype);
      return decode_error(L, status, lua_tostring(L, -1));
    }
  }
  if (!pa_json_decode_with(L, -1, keep_nulls, lua_upvalueindex(DECODE_UP_ARRAY_MT),
                           lua_upvalueindex(DECODE_UP_CJSON)))
    return decode_error(L, status, lua_tostring(L, -1));
  return 1;
}

/* client:config() -> a table describing the client, without any secret. */
static int client_config(lua_State *L) {
  pa_client *c = pa_client_check(L, 1);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, c->closed ? "" : c->base_url);
  lua_setfield(L, -2, "base_url");
  lua_pushboolean(L, c->allow_http);
  lua_setfield(L, -2, "allow_http");
  lua_pushnumber(L, (lua_Number)c->connect_timeout_ms / 1000.0);
  lua_setfield(L, -2, "connect_timeout");
  lua_pushnumber(L, (lua_Number)c->timeout_ms / 1000.0);
  lua_setfield(L, -2, "timeout");
  lua_pushnumber(L, (lua_Number)c->max_body);
  lua_setfield(L, -2, "max_body");
  if (c->ca_file) {
    lua_pushstring(L, c->ca_file);
    lua_setfield(L, -2, "ca_file");
  }
  if (c->user_agent) {
    lua_pushstring(L, c->user_agent);
    lua_setfield(L, -2, "user_agent");
  }
  lua_pushboolean(L, c->closed);
  lua_setfield(L, -2, "closed");
  return 1;
}

static int client_tostring(lua_State *L) {
  pa_client *c = pa_client_check(L, 1);
  lua_pushfstring(L, "planapi.client (%s)", c->closed ? "closed" : c->base_url);
  return 1;
}

/* methods.prepare, with its upvalues (UP_*). */
static void add_prepare(lua_State *L) {
  size_t i;
  luaL_getmetatable(L, PA_CLIENT_MT);
  for (i = 0; i < PREPARE_STRINGS; i++) lua_pushstring(L, prepare_strings[i]);
  lua_pushcclosure(L, client_prepare, 1 + (int)PREPARE_STRINGS);
  lua_setfield(L, -2, "prepare");
}

void pa_client_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"redact", client_redact}, {"add_secret", client_add_secret},
                                     {"config", client_config},   {"close", client_close},
                                     {NULL, NULL}};
  static const pa_class client_class = {PA_CLIENT_MT, methods, client_close, client_close, client_tostring};
  int mod = lua_gettop(L);
  pa_class_register(L, &client_class);
  pa_class_push_methods(L, PA_CLIENT_MT);
  lua_pushvalue(L, mod); /* client:error needs core.error */
  lua_pushcclosure(L, client_error, 1);
  lua_setfield(L, -2, "error");
  luaL_getmetatable(L, PA_CLIENT_MT);
  lua_pushliteral(L, "status");
  lua_pushliteral(L, "body");
  pa_json_push_decoders(L);
  lua_pushcclosure(L, client_decode, DECODE_UPS);
  lua_setfield(L, -2, "decode");
  add_prepare(L);
  lua_pop(L, 1);
  lua_pushcfunction(L, client_new);
  lua_setfield(L, mod, "client");
}
