/* compat.h: the few Lua 5.4 API calls planapi uses that Lua 5.1 and LuaJIT
 * lack. The sources are written against 5.4; this header maps them down.
 * Two guards, because LuaJIT 2.1 already has part of the 5.2 API
 * (luaL_setfuncs, luaL_testudata, luaL_setmetatable) that plain 5.1 lacks. */
#ifndef PLANAPI_COMPAT_H
#define PLANAPI_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

/* LUAJIT_VERSION is defined in luajit.h, which lua.h does not include. */
#if LUA_VERSION_NUM == 501 && defined(__has_include)
#if __has_include(<luajit.h>)
#include <luajit.h>
#endif
#endif

#if LUA_VERSION_NUM == 501

#define lua_rawlen(L, i) lua_objlen((L), (i))
#define lua_absindex(L, i) \
  (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)

/* 5.1 has no integer subtype: every number is a float. */
#define lua_isinteger(L, i) 0
#define lua_tointeger_exact(L, i) ((lua_Integer)lua_tonumber((L), (i)))

/* User values: 5.1 gives a userdata one environment table, which is all
 * planapi needs (it anchors one table per userdata). */
#define lua_newuserdatauv(L, sz, nuv) lua_newuserdata((L), (sz))
#define lua_setiuservalue(L, idx, n) lua_setfenv((L), (idx))
static inline int lua_getiuservalue(lua_State *L, int idx, int n) {
  (void)n;
  lua_getfenv(L, idx);
  return lua_type(L, -1);
}

#if !defined(LUAJIT_VERSION)
/* Plain Lua 5.1 only: LuaJIT 2.1 provides these itself. */
#define LUA_OK 0
void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
void *luaL_testudata(lua_State *L, int ud, const char *tname);
#define luaL_setmetatable(L, tname) \
  (luaL_getmetatable((L), (tname)), lua_setmetatable((L), -2))
#define luaL_newlib(L, l) \
  (lua_createtable((L), 0, sizeof(l) / sizeof((l)[0]) - 1), luaL_setfuncs((L), (l), 0))
#endif

#else /* Lua 5.2 and later */

#define lua_tointeger_exact(L, i) lua_tointeger((L), (i))

#if LUA_VERSION_NUM < 504
#define lua_newuserdatauv(L, sz, nuv) lua_newuserdata((L), (sz))
#define lua_setiuservalue(L, idx, n) lua_setuservalue((L), (idx))
#define lua_getiuservalue(L, idx, n) lua_getuservalue((L), (idx))
#endif

#endif

#endif
