/* headers.h: the pure parser of an HTTP response header block (headers.c),
 * shared by the libcurl transport, the cosocket transport (through
 * core.parse_headers) and the fuzz target. */
#ifndef PLANAPI_HEADERS_H
#define PLANAPI_HEADERS_H

#include <stddef.h>

#include "compat.h"

/* Push a table of the header block: names lower-cased, values trimmed,
 * repeated headers joined with ", ", folded lines appended, status lines
 * skipped. */
void pa_headers_push(lua_State *L, const char *s, size_t len);
/* core.parse_headers(text) -> table. */
void pa_headers_open(lua_State *L);

#endif
