/* buf.h: a growable byte buffer in C memory.
 * Used where Lua's own luaL_Buffer cannot be: inside libcurl callbacks
 * (which must never touch Lua) and while walking tables (which pushes
 * values in between appends). */
#ifndef PLANAPI_BUF_H
#define PLANAPI_BUF_H

#include <stddef.h>
#include <string.h>

#include "compat.h"

typedef struct {
  char *p;
  size_t len, cap;
} pa_buf;

/* Both return 0 when memory runs out (the buffer is left as it was). */
int pa_buf_reserve(pa_buf *b, size_t extra);
int pa_buf_add(pa_buf *b, const char *s, size_t n);
/* pa_buf_add inlined where there is room already (libcurl's callbacks,
 * called for each header line and piece of body). */
static inline int pa_buf_put(pa_buf *b, const char *s, size_t n) {
  if (b->cap - b->len > n) { /* room for n bytes and the NUL, as pa_buf_reserve keeps */
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 1;
  }
  return pa_buf_add(b, s, n);
}
void pa_buf_free(pa_buf *b);
/* Push a userdata that owns a fresh buffer and frees it when collected, so
 * an error raised half-way through filling it leaks nothing. */
pa_buf *pa_buf_push_owned(lua_State *L);
void pa_buf_open(lua_State *L);

#endif
