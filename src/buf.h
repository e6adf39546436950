/* buf.h: a growable byte buffer in C memory.
 * Used where Lua's own luaL_Buffer cannot be: inside libcurl callbacks
 * (which must never touch Lua) and while walking tables (which pushes
 * values in between appends). */
#ifndef PLANAPI_BUF_H
#define PLANAPI_BUF_H

#include <stddef.h>
#include "compat.h"

typedef struct {
  char *p;
  size_t len, cap;
} pa_buf;

/* Both return 0 when memory runs out (the buffer is left as it was). */
int pa_buf_reserve(pa_buf *b, size_t extra);
int pa_buf_add(pa_buf *b, const char *s, size_t n);
void pa_buf_free(pa_buf *b);
/* Push a userdata that owns a fresh buffer and frees it when collected, so
 * an error raised half-way through filling it leaks nothing. */
pa_buf *pa_buf_push_owned(lua_State *L);
void pa_buf_open(lua_State *L);

#endif
