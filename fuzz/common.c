/* common.c: the Lua host shared by the fuzz targets (see common.h). */
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PA_FUZZ_ROOT
#error "build with -DPA_FUZZ_ROOT=\"/path/to/the/repository\" (tools/run-fuzz does)"
#endif
#ifndef PA_FUZZ_CJSON_DIR
#define PA_FUZZ_CJSON_DIR "/usr/lib/x86_64-linux-gnu/lua/5.4"
#endif

int luaopen_planapi_core(lua_State *L);

static lua_State *the_state;
static unsigned long inputs_done;

void fz_fail(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "\n==FUZZ ORACLE FAILURE== ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n");
  fflush(stderr);
  abort();
}

/* package.loaded["planapi.core"] = luaopen_planapi_core("planapi.core") */
static int open_core(lua_State *L) {
  luaL_requiref(L, "planapi.core", luaopen_planapi_core, 0);
  return 0;
}

lua_State *fz_state(void) {
  lua_State *L;
  const char *root;
  if (the_state) return the_state;
  root = getenv("PLANAPI_ROOT");
  if (root == NULL || root[0] == '\0') root = PA_FUZZ_ROOT;
  L = luaL_newstate();
  if (L == NULL) fz_fail("luaL_newstate failed");
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", root, root);
  lua_setfield(L, -2, "path");
  lua_pushfstring(L, "%s/?.so;/usr/local/lib/lua/5.4/?.so;/usr/lib/lua/5.4/?.so", PA_FUZZ_CJSON_DIR);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  /* luaopen_planapi_core requires "cjson", so the paths come first; and
   * under pcall, so that a missing cjson is a message, not a Lua panic. */
  lua_pushcfunction(L, open_core);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK)
    fz_fail("opening planapi.core failed: %s (is lua-cjson installed, PLANAPI_ROOT=%s right?)",
            lua_tostring(L, -1), root);
  the_state = L;
  return L;
}

int fz_chunk(lua_State *L, const char *name, const char *source) {
  if (luaL_loadbuffer(L, source, strlen(source), name) != LUA_OK)
    fz_fail("loading %s: %s", name, lua_tostring(L, -1));
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "planapi.core");
  lua_remove(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) fz_fail("running %s: %s", name, lua_tostring(L, -1));
  if (lua_type(L, -1) != LUA_TFUNCTION) fz_fail("%s must return a function", name);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = luaL_tolstring(L, 1, NULL);
  luaL_traceback(L, L, msg, 1);
  return 1;
}

void fz_call_or_abort(lua_State *L, int fn, int nargs, const char *what) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
  lua_rotate(L, base + 1, 2); /* handler, function, args... */
  if (lua_pcall(L, nargs, 0, base + 1) != LUA_OK) fz_fail("%s: %s", what, lua_tostring(L, -1));
  lua_settop(L, base);
}

void fz_done(lua_State *L) {
  static int report = -1;
  lua_settop(L, 0);
  if (++inputs_done % FZ_GC_EVERY == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  if (report < 0) report = getenv("FZ_DEBUG") != NULL;
  /* FZ_DEBUG: the live Lua heap now and then, to see that it stays flat */
  if (report && (inputs_done & (inputs_done - 1)) == 0)
    fprintf(stderr, "FZ_DEBUG: %lu inputs, Lua heap %d kB\n", inputs_done, lua_gc(L, LUA_GCCOUNT, 0));
}

int fz_feed_bytes(int fn, const uint8_t *data, size_t size, const char *what) {
  lua_State *L = fz_state();
  lua_pushlstring(L, (const char *)data, size);
  fz_call_or_abort(L, fn, 1, what);
  fz_done(L);
  return 0;
}

/* ------------------------------------------------------------ Lua coverage */

#define FZ_LUA_COUNTERS 8192
__attribute__((section("__libfuzzer_extra_counters"), used))
static uint8_t lua_counters[FZ_LUA_COUNTERS];
static uintptr_t lua_prev_loc;

static void line_hook(lua_State *L, lua_Debug *ar) {
  uintptr_t loc;
  if (!lua_getinfo(L, "S", ar) || ar->source[0] != '@') return; /* files only, not the oracle */
  /* source is the chunk's interned name, the same pointer for every line */
  loc = ((uintptr_t)ar->source * 31u) ^ ((uintptr_t)ar->currentline * 0x9E3779B1u);
  loc ^= loc >> 15;
  {
    uint8_t *c = &lua_counters[(loc ^ (lua_prev_loc >> 1)) % FZ_LUA_COUNTERS];
    if (*c < 255) (*c)++;
  }
  lua_prev_loc = loc;
}

void fz_lua_coverage(lua_State *L) {
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
}

/* ------------------------------------------------------------ bytes */

uint8_t fz_u8(fz_bytes *b) {
  if (b->left == 0) return 0;
  b->left--;
  return *b->p++;
}

int fz_bool(fz_bytes *b) {
  return fz_u8(b) & 1;
}

uint64_t fz_u64(fz_bytes *b) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = (v << 8) | fz_u8(b);
  return v;
}

unsigned fz_below(fz_bytes *b, unsigned n) {
  unsigned v = fz_u8(b);
  if (n > 256) v = (v << 8) | fz_u8(b);
  return v % n;
}

const char *fz_take(fz_bytes *b, size_t max, size_t *len) {
  size_t n = fz_u8(b);
  const char *s;
  if (max > 255) n = (n << 8) | fz_u8(b);
  n %= max + 1;
  if (n > b->left) n = b->left;
  s = (const char *)b->p;
  b->p += n;
  b->left -= n;
  *len = n;
  return s;
}
