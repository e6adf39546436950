/* buf.c: growable byte buffer (see buf.h). */
#include "buf.h"
#include "luax.h"

#include <stdlib.h>
#include <string.h>

#define PA_BUF_MT "planapi.buffer"

int pa_buf_reserve(pa_buf *b, size_t extra) {
  size_t need, cap;
  char *p;
  if (extra > (size_t)-1 - b->len - 1) return 0;
  need = b->len + extra + 1; /* +1 keeps room for a terminating NUL */
  if (need <= b->cap) return 1;
  cap = b->cap ? b->cap : 256;
  while (cap < need) cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
  p = realloc(b->p, cap);
  if (p == NULL) return 0;
  b->p = p;
  b->cap = cap;
  return 1;
}

int pa_buf_add(pa_buf *b, const char *s, size_t n) {
  if (!pa_buf_reserve(b, n)) return 0;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  return 1;
}

void pa_buf_free(pa_buf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static int owned_gc(lua_State *L) {
  pa_buf_free((pa_buf *)luaL_checkudata(L, 1, PA_BUF_MT));
  return 0;
}

pa_buf *pa_buf_push_owned(lua_State *L) {
  pa_buf *b = (pa_buf *)lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, PA_BUF_MT);
  return b;
}

void pa_buf_open(lua_State *L) {
  static const pa_class buf_class = {PA_BUF_MT, NULL, owned_gc, NULL, NULL};
  pa_class_register(L, &buf_class);
}
