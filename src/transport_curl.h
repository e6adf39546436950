/* transport_curl.h: client:perform(req) over libcurl (transport_curl.c). */
#ifndef PLANAPI_TRANSPORT_CURL_H
#define PLANAPI_TRANSPORT_CURL_H

#include "compat.h"

/* Adds perform to the client's methods and sets the default User-Agent;
 * after pa_client_open. */
void pa_curl_open(lua_State *L);

#endif
