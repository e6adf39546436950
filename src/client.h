/* client.h: the userdata client shared by client.c (config, prepare,
 * decode) and transport_curl.c (perform). */
#ifndef PLANAPI_CLIENT_H
#define PLANAPI_CLIENT_H

#include <curl/curl.h>
#include <stdio.h>

#include "buf.h"
#include "compat.h"

#define PA_CLIENT_MT "planapi.client"

/* User value slots (one table in the uservalue): default headers and the
 * secrets to redact from every error message. */
#define PA_UV_HEADERS "headers"
#define PA_UV_SECRETS "secrets"

typedef struct {
  CURL *curl;                 /* one easy handle, reused: keep-alive */
  struct curl_slist *slist;   /* headers of the request in flight */
  pa_buf body, head;          /* response being received */
  size_t max_body;
  int over_cap, out_of_memory;
  int allow_http;
  int closed;
  int proxy_mode;             /* 0: environment, 1: explicit, 2: none */
  long connect_timeout_ms, timeout_ms;
  char *base_url;             /* always ends with '/' */
  char *ca_file, *proxy, *user_agent;
  char errbuf[CURL_ERROR_SIZE];
  /* req.sink: a 200 body goes to sink_part, renamed to sink_path when complete */
  FILE *sink;
  char *sink_path, *sink_part;
  int sink_mode;              /* 0: undecided, 1: to the file, 2: to memory */
  size_t sink_bytes;
} pa_client;

pa_client *pa_client_check(lua_State *L, int idx);
/* Raise a config error for a header name or value that could split a request. */
void pa_client_check_headers(lua_State *L, int idx);
/* Push the table of a raw response header block (transport_curl.c). */
void pa_headers_push(lua_State *L, const char *s, size_t len);
void pa_transport_open(lua_State *L);
/* Push message with every configured secret of the client at idx masked
 * (redact.c: fragments and encoded forms too). */
void pa_client_push_redacted(lua_State *L, int idx, const char *message);
/* The same for len bytes of text, then cut to max bytes (0: no cut). */
void pa_client_push_redacted_cut(lua_State *L, int idx, const char *text, size_t len, size_t max);
/* client:perform(req) -> res | nil, err (transport_curl.c). */
int pa_client_perform(lua_State *L);
void pa_client_release_transfer(pa_client *c);
void pa_client_open(lua_State *L);

#endif
