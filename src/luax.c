/* luax.c: the Lua C API chores shared by every file of src/ (luax.h). */
#include "luax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static void set_function(lua_State *L, const char *field, lua_CFunction fn) {
  if (fn == NULL) return;
  lua_pushcfunction(L, fn);
  lua_setfield(L, -2, field);
}

void pa_class_register(lua_State *L, const pa_class *cls) {
  luaL_newmetatable(L, cls->name);
  lua_pushstring(L, cls->name); /* Lua 5.4 sets it; LuaJIT does not */
  lua_setfield(L, -2, "__name");
  set_function(L, "__gc", cls->gc);
#if LUA_VERSION_NUM >= 504
  set_function(L, "__close", cls->close);
#endif
  set_function(L, "__tostring", cls->tostring);
  if (cls->methods != NULL) {
    lua_newtable(L);
    luaL_setfuncs(L, cls->methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

void *pa_udata_with_mt(lua_State *L, int idx, int mt) {
  int same;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return NULL;
  same = lua_rawequal(L, -1, mt);
  lua_pop(L, 1);
  return same ? lua_touserdata(L, idx) : NULL;
}

void pa_class_push_methods(lua_State *L, const char *name) {
  luaL_getmetatable(L, name);
  lua_getfield(L, -1, "__index");
  lua_remove(L, -2);
}

void pa_module_add(lua_State *L, const pa_class *cls, const luaL_Reg *fns) {
  if (cls != NULL) pa_class_register(L, cls);
  luaL_setfuncs(L, fns, 0);
}

static int key_cmp(const void *a, const void *b) {
  const pa_key *x = (const pa_key *)a, *y = (const pa_key *)b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

pa_key *pa_sorted_keys(lua_State *L, int idx, size_t *n) {
  size_t count = 0, i = 0;
  pa_key *keys;
  idx = lua_absindex(L, idx);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) return NULL; /* the key stays pushed */
    count++;
  }
  keys = (pa_key *)lua_newuserdatauv(L, (count ? count : 1) * sizeof *keys, 0);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    keys[i].s = lua_tolstring(L, -1, &keys[i].len);
    i++;
  }
  qsort(keys, count, sizeof *keys, key_cmp);
  *n = count;
  return keys;
}

const char *pa_arg_string(lua_State *L, int idx, const char *name) {
  size_t len;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING) pa_error_raise(L, "option '%s' must be a string", name);
  s = lua_tolstring(L, idx, &len);
  /* C would silently cut the value at a NUL: refuse it instead */
  if (strlen(s) != len) pa_error_raise(L, "option '%s' must not contain a NUL byte", name);
  return s;
}

const char *pa_opt_string(lua_State *L, int opts, const char *name) {
  const char *s = NULL;
  lua_getfield(L, opts, name);
  if (!lua_isnil(L, -1)) s = pa_arg_string(L, -1, name);
  lua_pop(L, 1); /* the string stays alive in the options table */
  return s;
}

double pa_opt_seconds(lua_State *L, int opts, const char *name, double dflt) {
  double v = dflt;
  lua_getfield(L, opts, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || lua_tonumber(L, -1) <= 0)
      pa_error_raise(L, "option '%s' must be a positive number of seconds", name);
    v = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

size_t pa_number_text(char *tmp, size_t size, double d) {
  int n;
  if (d == floor(d) && fabs(d) < 9007199254740992.0) {
    n = snprintf(tmp, size, "%.0f", d);
  } else {
    n = snprintf(tmp, size, "%.15g", d); /* 0.1, not 0.10000000000000001 */
    if (strtod(tmp, NULL) != d) n = snprintf(tmp, size, "%.17g", d);
  }
  return n > 0 ? (size_t)n : 0;
}
