/* tcp.h: the blocking C socket (tcp.c): core.tcp_connect for the Redis
 * scope, and the two calls the libcurl transport's Redis pacer makes. */
#ifndef PLANAPI_TCP_H
#define PLANAPI_TCP_H

#include <stddef.h>

#include "compat.h"

/* The C socket userdata at idx, or NULL. */
void *pa_tcp_test(lua_State *L, int idx);
/* One command written and one integer reply read, without Lua (it runs
 * inside libcurl's prereq callback). 0 and a message in err on failure. */
int pa_tcp_int_exchange(void *sock, const char *cmd, size_t len, long long *out, char *err, size_t errlen);
/* core.tcp_connect, core.is_tcp. */
void pa_tcp_open(lua_State *L);

#endif
