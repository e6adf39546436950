/* interrupt.h: Ctrl-C for a command-line program, without Lua in a signal
 * handler: the handler only sets a flag, and the code that blocks (libcurl's
 * progress callback, core.sleep) polls it. */
#ifndef PLANAPI_INTERRUPT_H
#define PLANAPI_INTERRUPT_H

/* 1 once SIGINT arrived after core.catch_interrupt(); 0 otherwise. */
int pa_interrupted(void);
/* 1 once core.catch_interrupt() was called: only then do transfers poll. */
int pa_interrupt_armed(void);

#include "compat.h"
/* Put catch_interrupt and interrupted into the table on top. */
void pa_interrupt_open(lua_State *L);

#endif
