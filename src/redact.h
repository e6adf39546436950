/* redact.h: the one routine that masks secrets in any text planapi shows. */
#ifndef PLANAPI_REDACT_H
#define PLANAPI_REDACT_H

#include <stddef.h>

#include "compat.h"

/* Strings shorter than this are never taken as secrets: they would mask
 * ordinary words, and no real credential is that short. */
#define PA_REDACT_MIN 4
/* Any run of this many characters of a secret is masked, wherever it is. */
#define PA_REDACT_WINDOW 6
/* A secret's prefix or suffix this long at an edge of the text (or at a
 * cut) is masked too: it is what is left of a secret cut there. */
#define PA_REDACT_EDGE 4

/* Push text with every secret in the list (a Lua array of strings at index
 * `secrets`, or 0 for none) masked as "***", in its raw, JSON-escaped,
 * URL-encoded and XML-escaped forms, then cut to at most max bytes of the
 * text (0: no cut; never inside a UTF-8 character) with "..." when cut.
 * The whole text is searched before the cut. */
void pa_redact_push(lua_State *L, int secrets, const char *text, size_t len, size_t max);

/* core.redact(text, secrets [, max]) */
void pa_redact_open(lua_State *L);

#endif
