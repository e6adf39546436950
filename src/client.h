/* client.h: the userdata client (client.c): configuration, the pure halves
 * prepare and decode, redaction. This is the whole interface a transport
 * needs, and it runs one way: a transport (transport_curl.c) reads the
 * configuration and calls these functions; the client calls no transport.
 * A transport keeps its own state in the client's transport slot, made on
 * first use, so a client that runs on cosockets never holds a curl handle. */
#ifndef PLANAPI_CLIENT_H
#define PLANAPI_CLIENT_H

#include <stddef.h>

#include "compat.h"

#define PA_CLIENT_MT "planapi.client"

/* The user value, one table: the secrets to redact from every error
 * message under PA_UV_SECRETS, and the default headers as a flat list
 * (name, value, name, value...) at 1..2 * default_headers. */
#define PA_UV_SECRETS "secrets"
/* Key 0 of the same table, before the list: the transport's own table of
 * Lua values (the strings its caches reuse), made by the transport. */
#define PA_UV_TRANSPORT 0

typedef struct {
  size_t max_body;
  int allow_http;
  int closed;
  int proxy_mode;             /* 0: environment, 1: explicit, 2: none */
  long connect_timeout_ms, timeout_ms;
  char *base_url;             /* always ends with '/' */
  size_t origin_len;          /* of base_url's "scheme://authority/" (url.h), or 0 */
  char *ca_file, *proxy;
  char *user_agent;           /* the user's option, or NULL: the transport names itself */
  int default_headers;        /* how many (the user value's list) */
  int default_accept;         /* whether an Accept is among them */
  /* The state of the transport serving this client, freed with it. */
  void *transport;
  void (*transport_free)(void *transport);
} pa_client;

pa_client *pa_client_check(lua_State *L, int idx);
/* The same, raising a config error when the client is closed. */
pa_client *pa_client_check_open(lua_State *L, int idx);
/* pa_client_check(L, 1) for a method that holds the client metatable as
 * its upvalue up: compared with it, not looked up in the registry by name
 * (anything else goes to pa_client_check for its error); and the same
 * raising for a closed client. */
pa_client *pa_client_check_up(lua_State *L, int up);
pa_client *pa_client_check_open_up(lua_State *L, int up);
/* 1 if the client may talk to url (url.h: https, or http to loopback
 * with allow_http); else 0 with the reason in err. Cheap for a URL under
 * base_url, whose scheme and host were checked when the client was made. */
int pa_client_url_ok(const pa_client *c, const char *url, char *err, size_t errlen);
/* Raise a config error for a header name or value that could split a request. */
void pa_client_check_headers(lua_State *L, int idx);
/* The same for one entry: the name at -2, the value at -1 (as lua_next leaves them). */
void pa_client_check_header_entry(lua_State *L);
/* Push message with every configured secret of the client at idx masked
 * (redact.c: fragments and encoded forms too). */
void pa_client_push_redacted(lua_State *L, int idx, const char *message);
/* The same for len bytes of text, then cut to max bytes (0: no cut). */
void pa_client_push_redacted_cut(lua_State *L, int idx, const char *text, size_t len, size_t max);
/* core.client and the class; a transport adds its methods afterwards
 * (pa_class_push_methods(L, PA_CLIENT_MT)). */
void pa_client_open(lua_State *L);

#endif
