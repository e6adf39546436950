/* headers.h: the pure parser of an HTTP response header block (headers.c),
 * shared by the libcurl transport, the cosocket transport (through
 * core.parse_headers) and the fuzz target. */
#ifndef PLANAPI_HEADERS_H
#define PLANAPI_HEADERS_H

#include <stddef.h>

#include "buf.h"
#include "compat.h"

/* Lines of a block the cache below remembers; later lines are parsed anew. */
#define PA_HEADER_CACHE_LINES 32

/* What pa_headers_push_cached keeps of the last block it parsed, so that a
 * line byte for byte the same as the line at its place last time is set
 * from the strings made for it then, with no hashing of its name and value
 * again (an API answers with the same headers, call after call). Those
 * strings live in a Lua table the caller keeps (the anchor): name of line i
 * at 2i+1, value at 2i+2. Zeroed memory is an empty cache. */
typedef struct {
  pa_buf block;                            /* the last block's bytes */
  size_t at[PA_HEADER_CACHE_LINES];        /* where its line i starts */
  size_t len[PA_HEADER_CACHE_LINES];       /* and its length, without the LF */
  unsigned char kept[PA_HEADER_CACHE_LINES]; /* 1: line i's strings are in the anchor */
  int lines;                               /* how many lines above are known */
} pa_header_cache;

/* Push a table of the header block: names lower-cased, values trimmed,
 * repeated headers joined with ", ", folded lines appended, status lines
 * skipped. */
void pa_headers_push(lua_State *L, const char *s, size_t len);
/* The same table, with the strings of lines unchanged since the last block
 * taken from the anchor table at anchor (see pa_header_cache). */
void pa_headers_push_cached(lua_State *L, const char *s, size_t len, pa_header_cache *cache, int anchor);
/* core.parse_headers(text) -> table. */
void pa_headers_open(lua_State *L);

#endif
