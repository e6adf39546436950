/* errors.c: the planapi error type.
 * A table (not a userdata) so that layers written in Lua can add fields,
 * and so that busted and the standalone interpreter print it through
 * __tostring when it is raised. tostring() is always one line. */
#include "errors.h"
#include "luax.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const kinds[] = {
  "config", "transport", "timeout", "tls", "http", "api",
  "decode", "auth", "rate_limit", "quota", "io", NULL
};

/* Longest message tostring() shows; server text can be long. */
#define PA_TOSTRING_MAX 400

int pa_error_kind_valid(const char *kind) {
  int i;
  for (i = 0; kinds[i] != NULL; i++)
    if (strcmp(kinds[i], kind) == 0) return 1;
  return 0;
}

void pa_error_push(lua_State *L, const char *kind, const char *message) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "retryable");
  luaL_setmetatable(L, PA_ERROR_MT);
}

int pa_error_return(lua_State *L, const char *kind, const char *message) {
  lua_pushnil(L);
  pa_error_push(L, kind, message);
  return 2;
}

int pa_error_raise(lua_State *L, const char *fmt, ...) {
  va_list ap;
  const char *msg;
  va_start(ap, fmt);
  msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  pa_error_push(L, "config", msg);
  return lua_error(L);
}

/* A fixed-size text builder: tostring() output is bounded, so no Lua buffer
 * (whose stack discipline would clash with reading fields) is needed. */
typedef struct {
  char s[2 * PA_TOSTRING_MAX];
  size_t len;
} line_buf;

/* Append text with line breaks, tabs and NULs folded to spaces, cut at max. */
static void line_add(line_buf *lb, const char *s, size_t len, size_t max) {
  size_t i, room = sizeof lb->s - 4 - lb->len; /* keep room for "..." */
  size_t n = len < max ? len : max;
  if (n > room) n = room;
  for (i = 0; i < n; i++) {
    char c = s[i];
    if (c == '\n' || c == '\r' || c == '\t' || c == '\0') c = ' ';
    lb->s[lb->len++] = c;
  }
  if (n < len) {
    memcpy(lb->s + lb->len, "...", 3);
    lb->len += 3;
  }
}

static void line_str(line_buf *lb, const char *s) {
  line_add(lb, s, strlen(s), PA_TOSTRING_MAX);
}

/* Append field `name` (string or number) after `prefix`; 1 if present. */
static int line_field(lua_State *L, line_buf *lb, const char *prefix, const char *name) {
  int t;
  lua_pushstring(L, name);
  lua_rawget(L, 1);
  t = lua_type(L, -1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    size_t len;
    const char *s;
    /* the range check first: casting a double outside long long is undefined */
    if (t == LUA_TNUMBER && !lua_isinteger(L, -1) && lua_tonumber(L, -1) >= -9223372036854775808.0 &&
        lua_tonumber(L, -1) < 9223372036854775808.0 &&
        lua_tonumber(L, -1) == (lua_Number)(long long)lua_tonumber(L, -1)) {
      /* 5.1/LuaJIT numbers are floats: show 404, not 404.0 */
      char tmp[32];
      snprintf(tmp, sizeof tmp, "%lld", (long long)lua_tonumber(L, -1));
      lua_pop(L, 1);
      lua_pushstring(L, tmp);
    }
    s = lua_tolstring(L, -1, &len);
    line_str(lb, prefix);
    line_add(lb, s, len, PA_TOSTRING_MAX);
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  return 0;
}

/* "get-task-by-id: api error: Task does not exist (HTTP 404, code 1000)" */
static int error_tostring(lua_State *L) {
  line_buf lb;
  int details = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  lb.len = 0;
  if (line_field(L, &lb, "", "operation")) line_str(&lb, ": ");
  if (!line_field(L, &lb, "", "kind")) line_str(&lb, "unknown");
  line_str(&lb, " error");
  line_field(L, &lb, ": ", "message");
  if (line_field(L, &lb, " (HTTP ", "status")) details++;
  if (line_field(L, &lb, details ? ", code " : " (code ", "code")) details++;
  lua_pushstring(L, "retry_after");
  lua_rawget(L, 1);
  if (lua_type(L, -1) == LUA_TNUMBER) {
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%sretry after %gs", details ? ", " : " (", (double)lua_tonumber(L, -1));
    line_str(&lb, tmp);
    details++;
  }
  lua_pop(L, 1);
  if (details) line_str(&lb, ")");
  lua_pushlstring(L, lb.s, lb.len);
  return 1;
}

/* core.error{ kind = ..., message = ..., ... }: a new error from a table of
 * fields (copied, so the caller's table is not changed). */
static int error_new(lua_State *L) {
  const char *kind;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "kind");
  kind = lua_tostring(L, -1);
  if (kind == NULL || !pa_error_kind_valid(kind))
    return pa_error_raise(L, "error kind must be one of config, transport, timeout, tls, "
                             "http, api, decode, auth, rate_limit, quota (got %s)",
                          kind ? kind : luaL_typename(L, -1));
  lua_getfield(L, 1, "message");
  if (lua_type(L, -1) != LUA_TSTRING)
    return pa_error_raise(L, "error message must be a string");
  pa_error_push(L, kind, lua_tostring(L, -1));
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  return 1;
}

static int error_is(lua_State *L) {
  lua_pushboolean(L, pa_is_table_of(L, 1, PA_ERROR_MT));
  return 1;
}

void pa_errors_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"error", error_new}, {"is_error", error_is}, {NULL, NULL}};
  int i;
  /* By hand, not luax.h's pa_class_register: luax.c raises errors made here. */
  luaL_newmetatable(L, PA_ERROR_MT);
  lua_pushcfunction(L, error_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, PA_ERROR_MT);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
  luaL_setfuncs(L, fns, 0);
  lua_newtable(L);
  for (i = 0; kinds[i] != NULL; i++) {
    lua_pushstring(L, kinds[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "error_kinds");
}
