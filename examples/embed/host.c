/* host.c: a C application that embeds Lua 5.4 and runs plugins that talk to
 * the Planfix and Planado APIs through planapi.
 *
 * planapi's C core is linked into this program (the module's object files,
 * not planapi/core.so) and registered with luaL_requiref before any plugin
 * runs, so `require "planapi.core"` never searches package.cpath. The Lua
 * half of planapi is found through package.path.
 *
 *   make embed
 *   build/embed/planapi-host [-L LUA_DIR] PLUGIN.lua [ARGS...]
 *
 * LUA_DIR is the folder that holds the planapi Lua files (default: the repository's
 * lua/ folder, found from this program's path build/embed/planapi-host).
 * The plugin gets its arguments as `...` and in the global `arg`, like lua5.4
 * gives them. Any error (loading or running the plugin) is printed as one
 * line, the tostring of the error object, and the exit code is 1. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* The module's entry point, from src/core.c (linked statically). */
int luaopen_planapi_core(lua_State *L);

struct host_args {
  int argc;
  char **argv;
  const char *lua_dir; /* NULL: derive from argv[0] */
  int script;          /* index of the plugin in argv */
};

/* package.path = DIR/?.lua;DIR/?/init.lua;<the default path>. */
static void set_lua_path(lua_State *L, const char *dir) {
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
}

/* The repository's lua/ folder, from the program at <repo>/build/embed/. */
static void push_default_lua_dir(lua_State *L, const char *argv0) {
  char resolved[PATH_MAX];
  const char *exe = NULL;
  if (realpath("/proc/self/exe", resolved) != NULL)
    exe = resolved;
  else if (argv0 != NULL && strchr(argv0, '/') != NULL && realpath(argv0, resolved) != NULL)
    exe = resolved;
  if (exe == NULL) {
    lua_pushliteral(L, "lua"); /* run from the repository root */
    return;
  }
  const char *slash = strrchr(exe, '/');
  lua_pushlstring(L, exe, (size_t)(slash - exe));
  lua_pushliteral(L, "/../../lua");
  lua_concat(L, 2);
}

/* Everything that can raise runs here, under lua_pcall. */
static int pmain(lua_State *L) {
  struct host_args *a = (struct host_args *)lua_touserdata(L, 1);
  luaL_openlibs(L);

  /* The C core: luaL_requiref calls luaopen_planapi_core and stores the
   * table in package.loaded["planapi.core"]; the preload entry keeps it
   * available even if a plugin clears package.loaded. */
  luaL_requiref(L, "planapi.core", luaopen_planapi_core, 0);
  lua_pop(L, 1);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_planapi_core);
  lua_setfield(L, -2, "planapi.core");
  lua_pop(L, 1);

  if (a->lua_dir != NULL)
    lua_pushstring(L, a->lua_dir);
  else
    push_default_lua_dir(L, a->argv[0]);
  set_lua_path(L, lua_tostring(L, -1));
  lua_pop(L, 1);

  /* arg: [0] = the plugin, [1..] = its arguments, [-1] = this program. */
  int nargs = a->argc - a->script - 1;
  lua_createtable(L, nargs, 2);
  for (int i = 0; i < a->argc; i++) {
    lua_pushstring(L, a->argv[i]);
    lua_rawseti(L, -2, i - a->script);
  }
  lua_setglobal(L, "arg");

  if (luaL_loadfile(L, a->argv[a->script]) != LUA_OK) return lua_error(L);
  for (int i = a->script + 1; i < a->argc; i++) lua_pushstring(L, a->argv[i]);
  lua_call(L, nargs, 0);
  return 0;
}

/* tostring(err) under pcall: a __tostring that fails must not reach the panic handler. */
static int to_string(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

static void usage(const char *prog) {
  fprintf(stderr, "usage: %s [-L LUA_DIR] PLUGIN.lua [ARGS...]\n", prog);
}

int main(int argc, char **argv) {
  struct host_args a = { argc, argv, NULL, 1 };
  const char *prog = argc > 0 ? argv[0] : "planapi-host";
  while (a.script < argc && argv[a.script][0] == '-') {
    if (strcmp(argv[a.script], "-L") == 0 && a.script + 1 < argc) {
      a.lua_dir = argv[a.script + 1];
      a.script += 2;
    } else if (strcmp(argv[a.script], "--") == 0) {
      a.script++;
      break;
    } else {
      usage(prog);
      return 2;
    }
  }
  if (a.script >= argc) {
    usage(prog);
    return 2;
  }

  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create a Lua state (out of memory)\n", prog);
    return 1;
  }
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &a);
  int status = lua_pcall(L, 1, 0, 0);
  if (status != LUA_OK) {
    /* tostring of the error object (planapi errors have __tostring), on one line. */
    size_t len = 0;
    const char *msg = NULL;
    lua_pushcfunction(L, to_string);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) msg = lua_tolstring(L, -1, &len);
    if (msg == NULL) {
      msg = "(the error object has no string form)";
      len = strlen(msg);
    }
    fprintf(stderr, "%s: ", prog);
    for (size_t i = 0; i < len; i++) fputc(msg[i] == '\n' || msg[i] == '\r' ? ' ' : msg[i], stderr);
    fputc('\n', stderr);
    lua_pop(L, 1);
  }
  lua_close(L); /* closes clients (their __gc) before exiting */
  return status == LUA_OK ? 0 : 1;
}
