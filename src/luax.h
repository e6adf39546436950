/* luax.h: the Lua C API chores every file of src/ would otherwise write out
 * again: class registration, sorted keys, option readers, number text. */
#ifndef PLANAPI_LUAX_H
#define PLANAPI_LUAX_H

#include <stddef.h>

#include "compat.h"

/* A userdata class: its metatable is registered under name. */
typedef struct {
  const char *name;
  const luaL_Reg *methods;  /* the __index table (NULL: none) */
  lua_CFunction gc;         /* __gc (NULL: none) */
  lua_CFunction close;      /* __close under Lua 5.4 (NULL: none) */
  lua_CFunction tostring;   /* __tostring (NULL: none) */
} pa_class;

/* Register the class's metatable; the stack is left as it was. */
void pa_class_register(lua_State *L, const pa_class *cls);
/* Push the __index table of a registered class (to add to it). */
void pa_class_push_methods(lua_State *L, const char *name);
/* Register the class (NULL: none), then add fns to the module table on
 * top of the stack: what most parts of the core open with. */
void pa_module_add(lua_State *L, const pa_class *cls, const luaL_Reg *fns);

/* The userdata at idx if its metatable is the value at mt (an absolute or
 * pseudo-index: a method's upvalue holding the class's metatable, say),
 * else NULL: no registry
 * lookup by name, as luaL_checkudata makes. The stack is left as it was. */
void *pa_udata_with_mt(lua_State *L, int idx, int mt);

/* Is the value at idx a table whose metatable is the one registered as
 * tname (an error, a marked array)? The stack is left as it was. Inline,
 * so errors.c, which luax.c calls, can use it without a call back. */
static inline int pa_is_table_of(lua_State *L, int idx, const char *tname) {
  int is = 0;
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, tname);
    is = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  return is;
}

/* A table key, by pointer and length (the string stays alive as a key). */
typedef struct {
  const char *s;
  size_t len;
} pa_key;

/* The string keys of the table at idx in byte order, in a userdata pushed
 * on the stack (kept until the caller pops it), their number in *n. A key
 * that is not a string stops it: NULL, and that key pushed instead, for the
 * caller's error message. Sorted, so the same table always gives the same
 * bytes (a URL, a signature). */
pa_key *pa_sorted_keys(lua_State *L, int idx, size_t *n);

/* Option readers for a table of options at opts; each raises a config
 * error naming the option. NULL / dflt when absent. */
const char *pa_opt_string(lua_State *L, int opts, const char *name);
/* The same check for a value at idx (an argument): a string without NUL. */
const char *pa_arg_string(lua_State *L, int idx, const char *name);
double pa_opt_seconds(lua_State *L, int opts, const char *name, double dflt);

/* The shortest text of a finite number that reads back the same: an
 * integral value without a fraction (42.0 is "42"), else %.15g, else %.17g.
 * Returns the length written into tmp (size >= 32). */
size_t pa_number_text(char *tmp, size_t size, double d);

#endif
