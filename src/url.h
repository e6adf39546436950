/* url.h: URL policy (https, or http to loopback on request) and query encoding. */
#ifndef PLANAPI_URL_H
#define PLANAPI_URL_H

#include "buf.h"
#include "compat.h"

int pa_url_is_loopback_host(const char *host);
/* 1 if the client may talk to url; else 0 with a reason in err. */
int pa_url_check(const char *url, int allow_http, char *err, size_t errlen);
/* The length of base's "scheme://authority/" when its authority is plain
 * (host and port only), else 0. base must have passed pa_url_check. */
size_t pa_url_origin_len(const char *base);
/* pa_url_check, answered at once for a URL that starts with the
 * origin_len bytes of base (a checked base URL): the same scheme and host
 * pass the same check. The rest is looked at only for bytes libcurl's
 * parser refuses, so such a URL fails as it would in full. */
int pa_url_check_under(const char *url, const char *base, size_t origin_len, int allow_http, char *err,
                       size_t errlen);
/* Append s percent-encoded (RFC 3986 unreserved kept); sets *oom on failure. */
void pa_url_escape(pa_buf *b, const char *s, size_t len, int *oom);
/* Append the table at idx as a query string, keys sorted, lists repeated. */
void pa_query_encode(lua_State *L, int idx, pa_buf *b);
void pa_url_open(lua_State *L);

#endif
