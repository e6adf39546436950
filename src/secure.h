/* secure.h: comparisons that must not leak timing (secure.c). */
#ifndef PLANAPI_SECURE_H
#define PLANAPI_SECURE_H

#include "compat.h"

/* core.secure_equals. */
void pa_secure_open(lua_State *L);

#endif
