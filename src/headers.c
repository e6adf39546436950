/* headers.c: the pure parser of an HTTP response header block (RFC 9112
 * section 5: field lines, obsolete line folding). No I/O: the libcurl
 * transport hands it the bytes its header callback collected, the cosocket
 * transport the bytes it read. */
#include "headers.h"

#include <string.h>

/* A field name longer than this is not an API talking: the line is skipped. */
#define MAX_NAME 256

/* Names remembered, so a name met once is set without a lookup first. */
#define SEEN_NAMES 32
#define SEEN_BYTES 1024

typedef struct {
  lua_State *L;
  int t;             /* the result table */
  pa_header_cache *cache; /* NULL: none */
  int anchor;        /* the cache's strings (headers.h) */
  int line;          /* index of the line being parsed */
  const char *block; /* the block being parsed */
  int same;          /* every line so far is the cached block's at its place */
  char name[MAX_NAME];
  size_t nlen;       /* name of the last header, for folded lines; 0: none */
  /* the names set so far, one after another in seen (all of them while
   * nseen <= SEEN_NAMES; beyond, the table is asked) */
  char seen[SEEN_BYTES];
  size_t seen_len, seen_at[SEEN_NAMES + 1];
  int nseen;
} parser;

/* Remember p->name, not met yet; 1 when there is no room (from now on the
 * table is asked: maybe_seen says 1), else 0. */
static int remember(parser *p) {
  if (p->nseen >= SEEN_NAMES || p->seen_len + p->nlen > SEEN_BYTES) {
    p->nseen = SEEN_NAMES + 1; /* no room: from now on the table says */
    return 1;
  }
  memcpy(p->seen + p->seen_len, p->name, p->nlen);
  p->seen_len += p->nlen;
  p->seen_at[++p->nseen] = p->seen_len;
  return 0;
}

/* Whether the table may hold p->name already; remembers it when not. */
static int maybe_seen(parser *p) {
  int i;
  if (p->nseen > SEEN_NAMES) return 1;
  for (i = 0; i < p->nseen; i++) {
    size_t len = p->seen_at[i + 1] - p->seen_at[i];
    if (len == p->nlen && memcmp(p->seen + p->seen_at[i], p->name, len) == 0) return 1;
  }
  return remember(p);
}

/* Push prev .. sep .. the bytes, as one string (a value may hold a NUL). */
static void push_joined(lua_State *L, const char *prev, size_t plen, const char *sep, const char *s,
                        size_t len) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (prev) luaL_addlstring(&b, prev, plen);
  luaL_addstring(&b, sep);
  luaL_addlstring(&b, s, len);
  luaL_pushresult(&b);
}

/* Obsolete line folding: the line continues the last value. */
static void add_folded(parser *p, const char *s, size_t len) {
  lua_State *L = p->L;
  size_t start = 0, plen = 0;
  const char *prev;
  if (p->nlen == 0) return;
  while (start < len && (s[start] == ' ' || s[start] == '\t')) start++;
  lua_pushlstring(L, p->name, p->nlen);
  lua_pushvalue(L, -1);
  lua_rawget(L, p->t);
  prev = lua_tolstring(L, -1, &plen);
  push_joined(L, prev, plen, " ", s + start, len - start);
  lua_remove(L, -2);
  lua_rawset(L, p->t);
}

/* Lower-case the field name of a line into p->name; 0 when the line is
 * junk (no colon, an empty or overlong name, a control character in it:
 * never a header someone could copy onward). */
static int take_name(parser *p, const char *s, size_t len, const char **colon) {
  size_t i, n;
  *colon = memchr(s, ':', len);
  if (*colon == NULL || *colon == s || (size_t)(*colon - s) >= sizeof p->name) return 0;
  n = (size_t)(*colon - s);
  for (i = 0; i < n; i++) {
    char ch = s[i];
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
    if ((unsigned char)ch < 0x20 || ch == 0x7f) return 0;
    p->name[i] = ch;
  }
  p->nlen = n;
  return 1;
}

/* The name and value of a line set alone (at -2 and -1) into the anchor,
 * for the same line in the next block. */
static void keep_strings(parser *p) {
  lua_State *L = p->L;
  if (p->cache == NULL || p->line >= PA_HEADER_CACHE_LINES) return;
  lua_pushvalue(L, -2);
  lua_rawseti(L, p->anchor, 2 * p->line + 1);
  lua_pushvalue(L, -1);
  lua_rawseti(L, p->anchor, 2 * p->line + 2);
  p->cache->kept[p->line] = 1;
}

/* A "name: value" line: the value trimmed, joined to an earlier one. */
static void add_field(parser *p, const char *s, size_t len) {
  lua_State *L = p->L;
  const char *colon, *v, *end = s + len;
  p->nlen = 0;
  if (!take_name(p, s, len, &colon)) return;
  v = colon + 1;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
  lua_pushlstring(L, p->name, p->nlen);
  if (!maybe_seen(p)) {
    lua_pushlstring(L, v, (size_t)(end - v));
    keep_strings(p);
    lua_rawset(L, p->t);
    return;
  }
  lua_pushvalue(L, -1);
  lua_rawget(L, p->t);
  if (lua_isstring(L, -1)) {
    size_t plen;
    const char *prev = lua_tolstring(L, -1, &plen);
    push_joined(L, prev, plen, ", ", v, (size_t)(end - v));
    lua_remove(L, -2);
  } else {
    lua_pop(L, 1);
    lua_pushlstring(L, v, (size_t)(end - v));
  }
  lua_rawset(L, p->t);
}

/* The lines of the block: room for every field at once, no rehash. */
static int count_lines(const char *s, size_t len) {
  const char *p = s, *end = s + len;
  int n = 0;
  while (n < 4096 && (p = (const char *)memchr(p, '\n', (size_t)(end - p))) != NULL) {
    n++;
    p++;
  }
  return n;
}

/* One line of the block, without its CR LF. */
static void add_line(parser *p, const char *s, size_t len) {
  if (len >= 5 && memcmp(s, "HTTP/", 5) == 0) p->nlen = 0; /* a status line */
  else if (len > 0 && (s[0] == ' ' || s[0] == '\t')) add_folded(p, s, len);
  else add_field(p, s, len);
}

/* Set the kept line i, its name (at -1) in p->name, unless the name was
 * met in this block already: then 0, the name popped. */
static int set_kept(parser *p, int i) {
  if (p->same ? (p->nseen > SEEN_NAMES || remember(p)) : maybe_seen(p)) {
    lua_pop(p->L, 1);
    return 0;
  }
  lua_rawgeti(p->L, p->anchor, 2 * i + 2);
  lua_rawset(p->L, p->t);
  return 1;
}

/* Line i of the block when it is byte for byte line i of the cached block
 * (its CR included), whose name and value were set alone: the same name
 * and value set again from the anchor. 0 when it must be parsed: another
 * line, or a name already met in this block (the values are joined). After
 * lines all the same as the cached block's, the name was not met before
 * (it was not then), so it is remembered without a search. */
static int add_kept_line(parser *p, int old_lines, const char *s, size_t len) {
  const pa_header_cache *c = p->cache;
  int i = p->line;
  const char *name;
  if (i >= old_lines || c->len[i] != len || memcmp(c->block.p + c->at[i], s, len) != 0) p->same = 0;
  else if (c->kept[i]) {
    lua_rawgeti(p->L, p->anchor, 2 * i + 1);
    name = lua_tolstring(p->L, -1, &p->nlen); /* lower-cased already, shorter than MAX_NAME */
    memcpy(p->name, name, p->nlen);
    return set_kept(p, i);
  }
  return 0;
}

/* Line i of a block parsed with a cache: set from it, or parsed and kept. */
static void add_cached_line(parser *p, int old_lines, const char *s, size_t len, size_t vlen) {
  pa_header_cache *c = p->cache;
  int i = p->line;
  if (!add_kept_line(p, old_lines, s, len)) {
    c->kept[i] = 0; /* until add_field keeps this line's strings */
    add_line(p, s, vlen);
  }
  c->at[i] = (size_t)(s - p->block);
  c->len[i] = len;
}

static void parse_block(parser *p, const char *s, size_t len, int old_lines) {
  size_t pos = 0;
  p->block = s;
  for (p->line = 0; pos < len; p->line++) {
    const char *nl = (const char *)memchr(s + pos, '\n', len - pos);
    size_t end = nl ? (size_t)(nl - s) : len, vend = end;
    if (vend > pos && s[vend - 1] == '\r') vend--;
    if (p->cache != NULL && p->line < PA_HEADER_CACHE_LINES)
      add_cached_line(p, old_lines, s + pos, end - pos, vend - pos);
    else
      add_line(p, s + pos, vend - pos);
    pos = end + 1;
  }
}

void pa_headers_push_cached(lua_State *L, const char *s, size_t len, pa_header_cache *cache, int anchor) {
  parser p;
  int old_lines = cache ? cache->lines : 0;
  p.L = L;
  p.nlen = 0;
  p.seen_len = 0;
  p.seen_at[0] = 0;
  p.nseen = 0;
  p.cache = cache;
  p.anchor = anchor;
  p.same = 1;
  /* Nothing cached until this block is kept whole: an error half-way
   * (out of memory) leaves an empty cache, never a half-updated one. */
  if (cache != NULL) cache->lines = 0;
  /* room for every field at once: as many as last time, else counted */
  lua_createtable(L, 0, old_lines > 0 && old_lines < PA_HEADER_CACHE_LINES ? old_lines : count_lines(s, len));
  p.t = lua_gettop(L);
  parse_block(&p, s, len, old_lines);
  if (cache != NULL) {
    cache->block.len = 0;
    if (pa_buf_add(&cache->block, s, len))
      cache->lines = p.line < PA_HEADER_CACHE_LINES ? p.line : PA_HEADER_CACHE_LINES;
  }
}

void pa_headers_push(lua_State *L, const char *s, size_t len) {
  pa_headers_push_cached(L, s, len, NULL, 0);
}

static int l_parse_headers(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  pa_headers_push(L, s, len);
  return 1;
}

void pa_headers_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"parse_headers", l_parse_headers}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
