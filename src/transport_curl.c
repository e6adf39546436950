/* transport_curl.c: client:perform(req) -> res | nil, err, over libcurl.
 *
 * The transport keeps its own state in the client's transport slot
 * (client.h), made on the first perform: one easy handle per client, kept
 * alive across calls. The client's policy (TLS, protocols, timeouts,
 * proxy, callbacks) is set on the handle once, when it is made, since a
 * client's configuration never changes; before every transfer each option
 * a request decides (URL, method, body, headers, timeout, pacer, fresh
 * connection) is set again, to its value or back to the default, so none
 * leaks from one request into the next. A client that never performs here
 * (cosockets) never holds a handle. The callbacks only copy bytes into C buffers: they never
 * touch Lua, so no Lua error can longjmp through libcurl. Lua values are
 * built after curl_easy_perform has returned. */
#include "transport_curl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "client.h"
#include "errors.h"
#include "headers.h"
#include "interrupt.h"
#include "limiter.h"
#include "luax.h"
#include "tcp.h"
#include "url.h"
#include "version.h"

/* Headers of one response beyond this are not an API talking. */
#define MAX_HEADER_BYTES ((size_t)256 * 1024)
/* Buffers larger than this are given back after a transfer, so an idle
 * client does not keep the memory of its largest response. */
#define KEEP_BUFFER_BYTES ((size_t)1024 * 1024)
/* Where OpenSSL finds the system CAs when ca_file adds one more. */
#define SYSTEM_CA_PATH "/etc/ssl/certs"

/* The Redis scope's pacer: req.pacer = { tcp = the limiter's C socket,
 * command = its confirm call as RESP bytes }, prepared by Lua. Redis reads
 * its own clock, so now is not used; the reply is the microseconds to wait. */
typedef struct {
  void *sock;
  const char *command;
  size_t len;
  int failed;
  char err[240];
} redis_pacer;

/* One client's libcurl state: the handle and what a transfer collects. */
typedef struct {
  CURL *curl;                 /* one easy handle, reused: keep-alive */
  char *user_agent_line;      /* "User-Agent: ...", sent unless req.headers has one */
  char accept_encoding_line[64]; /* "Accept-Encoding: ...", the same unless req.headers has one */
  pa_buf line;                /* scratch for one header line */
  struct curl_slist *slist;   /* headers of the request in flight, kept for the next */
  struct curl_slist **next_line; /* where build_header_list writes its next line */
  int checked_lines;          /* the first lines of slist, from checked header entries */
  pa_buf body, head;          /* response being received */
  pa_header_cache head_cache; /* the last response's header lines (headers.h) */
  size_t max_body;            /* the client's, for the callbacks */
  int over_cap, out_of_memory;
  char errbuf[CURL_ERROR_SIZE];
  /* req.sink: a 200 body goes to sink_part, renamed to sink_path when complete */
  FILE *sink;
  char *sink_path, *sink_part;
  int sink_mode;              /* 0: undecided, 1: to the file, 2: to memory */
  size_t sink_bytes;
  /* What the handle holds from the last request, so an option that would
   * be set to the value it already has is not set again (each setopt is a
   * call into libcurl per request). set: the fields below are known. */
  int set, plain_get, fresh, progress, paced;
  long timeout_ms;
  struct curl_slist *slist_set;
  /* The pacer of the request in flight, where the prereq callback finds
   * it; pacer_ud: the limiter userdata it came from, kept in the client's
   * transport table (so no other object can have its address), which the
   * next request's req.pacer is compared with before it is read again. */
  pa_pacer pacer;
  redis_pacer rpacer;
  const void *pacer_ud;
} transfer;

/* Close the sink; keep the file only when the transfer succeeded. */
static int finish_sink(transfer *t, int success) {
  int ok = 1;
  if (t->sink) {
    ok = fclose(t->sink) == 0;
    t->sink = NULL;
    if (success && ok && t->sink_mode == 1) ok = rename(t->sink_part, t->sink_path) == 0;
    else remove(t->sink_part); /* nothing half-written is left behind */
  }
  free(t->sink_path);
  free(t->sink_part);
  t->sink_path = t->sink_part = NULL;
  t->sink_mode = 0;
  return ok;
}

static void release_transfer(transfer *t) {
  finish_sink(t, 0);
  if (t->body.cap > KEEP_BUFFER_BYTES) pa_buf_free(&t->body);
  if (t->head.cap > KEEP_BUFFER_BYTES) pa_buf_free(&t->head);
  t->body.len = t->head.len = 0;
}

/* The client's transport_free: close(), __gc and __close end here once. */
static void transfer_free(void *state) {
  transfer *t = (transfer *)state;
  release_transfer(t);
  pa_buf_free(&t->body);
  pa_buf_free(&t->head);
  pa_buf_free(&t->line);
  pa_buf_free(&t->head_cache.block);
  free(t->user_agent_line);
  curl_easy_cleanup(t->curl);
  curl_slist_free_all(t->slist);
  free(t);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  transfer *t = (transfer *)ud;
  size_t n = size * nmemb;
  if (t->sink != NULL && t->sink_mode == 0) {
    /* Only a 200 is the file; any other answer (an XML error) is read. */
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    t->sink_mode = code == 200 ? 1 : 2;
  }
  if (t->sink_mode == 1) {
    if (n > t->max_body - t->sink_bytes) {
      t->over_cap = 1;
      return 0;
    }
    if (fwrite(ptr, 1, n, t->sink) != n) {
      t->out_of_memory = 2; /* a write error: disk full, say */
      return 0;
    }
    t->sink_bytes += n;
    return n;
  }
  if (n > t->max_body - t->body.len) {
    t->over_cap = 1;
    return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
  }
  if (!pa_buf_put(&t->body, ptr, n)) {
    t->out_of_memory = 1;
    return 0;
  }
  return n;
}

/* libcurl calls this often during a transfer, and at once after a signal
 * cut its poll short: a non-zero return aborts with
 * CURLE_ABORTED_BY_CALLBACK. It reads a flag only, never Lua. */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  (void)ud;
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  (void)ulnow;
  return pa_interrupted();
}

/* nil and the error of a transfer stopped by Ctrl-C: never retried. */
static int interrupted_error(lua_State *L, int maybe_sent) {
  lua_pushnil(L);
  pa_error_push(L, "transport", "interrupted (Ctrl-C)");
  lua_pushboolean(L, maybe_sent);
  lua_setfield(L, -2, "request_sent");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "interrupted");
  return 2;
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *ud) {
  transfer *t = (transfer *)ud;
  size_t n = size * nitems;
  /* A status line starts a new response (after a 100 Continue or a proxy's
   * CONNECT answer): only the last one's headers describe the body. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) t->head.len = 0;
  if (t->head.len + n > MAX_HEADER_BYTES) {
    t->over_cap = 2;
    return 0;
  }
  if (!pa_buf_put(&t->head, ptr, n)) {
    t->out_of_memory = 1;
    return 0;
  }
  return n;
}

/* CURLOPT_PREREQFUNCTION: the connection is up (TCP, TLS, a proxy's
 * tunnel) and the request is about to be written. The pacer holds it until
 * an interval has passed since the last request any sharer wrote, so a
 * slot spent opening a connection cannot bring two requests closer than
 * the limit. Pure C (a local or shm limiter, or Redis over the C socket), so no Lua runs inside
 * libcurl; sleeping is fine, the perform blocks anyway. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port) {
  const pa_pacer *p = (const pa_pacer *)ud;
  double wait;
  (void)primary_ip;
  (void)local_ip;
  (void)primary_port;
  (void)local_port;
  while ((wait = p->confirm(p->state, pa_monotime())) > 0) {
    if (pa_interrupted()) return CURL_PREREQFUNC_ABORT; /* Ctrl-C: nothing goes out */
    pa_sleep(wait);
  }
  /* A pacer that cannot answer (Redis out of reach): nothing goes out. */
  return wait < 0 ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

static double redis_confirm_fn(void *state, double now) {
  redis_pacer *r = (redis_pacer *)state;
  long long wait_us = 0;
  (void)now;
  if (!pa_tcp_int_exchange(r->sock, r->command, r->len, &wait_us, r->err, sizeof r->err)) {
    r->failed = 1;
    return -1.0;
  }
  return wait_us > 0 ? (double)wait_us / 1e6 : 0.0;
}

/* Fill p from req.pacer at idx: a local or shm limiter, or a Redis pacer
 * table. 0 when there is none. */
static int pacer_from(lua_State *L, int idx, pa_pacer *p, redis_pacer *r) {
  if (lua_type(L, idx) != LUA_TTABLE) return pa_pacer_get(L, idx, p);
  lua_getfield(L, idx, "tcp");
  r->sock = pa_tcp_test(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "command");
  r->command = lua_tolstring(L, -1, &r->len); /* stays alive in req.pacer */
  lua_pop(L, 1);
  if (r->sock == NULL || r->command == NULL) return 0;
  r->failed = 0;
  r->err[0] = '\0';
  p->confirm = redis_confirm_fn;
  p->state = r;
  return 1;
}

/* Map a CURLcode to an error kind, and say whether the request may have
 * reached the server (a POST that may have been received is not repeated
 * blindly by the retry policy). */
static const char *classify(CURLcode rc, int *retryable, int *maybe_sent) {
  *retryable = 0;
  *maybe_sent = 1;
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      *retryable = 1;
      *maybe_sent = 0;
      return "transport";
    case CURLE_OPERATION_TIMEDOUT:
      *retryable = 1;
      return "timeout";
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      *retryable = 1;
      return "transport";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
      *maybe_sent = 0; /* nothing is sent before the handshake succeeds */
      return "tls";
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      *maybe_sent = 0;
      return "config";
    default:
      return "transport";
  }
}

/* Did a CURLE_SSL_CONNECT_ERROR come from the network rather than from TLS
 * itself? The socket's errno says so (ECONNRESET...), or OpenSSL's own
 * "unexpected eof" when the peer closed without a reset. */
static int handshake_cut(const transfer *t) {
  long os_errno = 0;
  if (curl_easy_getinfo(t->curl, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
      (os_errno == ECONNRESET || os_errno == EPIPE || os_errno == ECONNABORTED || os_errno == ETIMEDOUT ||
       os_errno == ENETRESET))
    return 1;
  return strstr(t->errbuf, "unexpected eof") != NULL || strstr(t->errbuf, "Connection reset") != NULL ||
         strstr(t->errbuf, "SSL_ERROR_SYSCALL") != NULL;
}

/* What a newcomer needs after libcurl's "SSL peer certificate or SSH
 * remote key was not OK": which certificates were trusted, and the option
 * that changes it. */
static const char *verify_hint(const pa_client *c, const transfer *t, CURLcode rc) {
  if (rc != CURLE_PEER_FAILED_VERIFICATION) return "";
  if (strstr(t->errbuf, "subject name") || strstr(t->errbuf, "host name"))
    return " (the certificate is not for this host name: check the URL)";
  if (c->ca_file == NULL)
    return " (the server's certificate is not trusted by the system's CA store: for a private CA, "
           "such as a sandbox or a corporate proxy, set the client option ca_file to its PEM file)";
  return " (the server's certificate is not trusted by the client's ca_file: "
         "is it the CA that issued the server's certificate?)";
}

static int fail(lua_State *L, const pa_client *c, transfer *t, CURLcode rc) {
  char msg[CURL_ERROR_SIZE + 512]; /* room for verify_hint */
  int retryable, maybe_sent;
  const char *kind;
  curl_off_t sent_bytes = 0;
  if (rc == CURLE_ABORTED_BY_CALLBACK && pa_interrupted()) {
    maybe_sent = !(curl_easy_getinfo(t->curl, CURLINFO_REQUEST_SIZE, &sent_bytes) == CURLE_OK && sent_bytes == 0);
    release_transfer(t);
    return interrupted_error(L, maybe_sent);
  }
  if (t->over_cap == 1 || rc == CURLE_FILESIZE_EXCEEDED) {
    kind = "transport";
    retryable = 0;
    maybe_sent = 1;
    snprintf(msg, sizeof msg, "response body is larger than max_body (%lu bytes)",
             (unsigned long)c->max_body);
  } else if (t->over_cap == 2) {
    kind = "transport";
    retryable = 0;
    maybe_sent = 1;
    snprintf(msg, sizeof msg, "response headers are larger than %zu bytes", MAX_HEADER_BYTES);
  } else if (t->out_of_memory) {
    kind = "transport";
    retryable = 0;
    maybe_sent = 1;
    snprintf(msg, sizeof msg, t->out_of_memory == 2 ? "cannot write the download to its file"
                                                    : "out of memory while receiving the response");
  } else if (rc == CURLE_SSL_CONNECT_ERROR && handshake_cut(t)) {
    /* The connection died during the handshake (a reset, a close): a
     * network failure before anything was sent, not a certificate or TLS
     * configuration problem, so as retryable as a refused connect. */
    kind = "transport";
    retryable = 1;
    maybe_sent = 0;
    snprintf(msg, sizeof msg, "connection lost during the TLS handshake: %s", t->errbuf);
  } else {
    kind = classify(rc, &retryable, &maybe_sent);
    snprintf(msg, sizeof msg, "%s%s%s%s", curl_easy_strerror(rc), t->errbuf[0] ? ": " : "",
             t->errbuf, verify_hint(c, t, rc));
  }
  /* Bytes of request actually written: 0 proves the server got nothing. */
  if (maybe_sent && curl_easy_getinfo(t->curl, CURLINFO_REQUEST_SIZE, &sent_bytes) == CURLE_OK &&
      sent_bytes == 0)
    maybe_sent = 0;
  release_transfer(t);
  lua_pushnil(L);
  pa_client_push_redacted(L, 1, msg);
  pa_error_push(L, kind, lua_tostring(L, -1));
  lua_remove(L, -2);
  lua_pushboolean(L, retryable);
  lua_setfield(L, -2, "retryable");
  lua_pushboolean(L, maybe_sent);
  lua_setfield(L, -2, "request_sent");
  lua_pushinteger(L, (lua_Integer)rc);
  lua_setfield(L, -2, "curl_code");
  return 2;
}

#define SETOPT(t, opt, val)                                                 \
  do {                                                                      \
    if (curl_easy_setopt((t)->curl, (opt), (val)) != CURLE_OK) *bad = #opt; \
  } while (0)

/* The fields of req (argument 2) the transfer uses; the strings stay alive
 * in req for the whole transfer. */
typedef struct {
  const char *method, *url, *body;
  size_t body_len;
  long timeout_ms;
  int plain; /* req has no metatable: its fields are read raw */
} request;

/* perform's upvalues (pa_curl_open): the client metatable and the keys of
 * req and res it reads and sets on every call, made once instead of found
 * by name for each request. */
enum { UP_MT = 1, UP_METHOD, UP_URL, UP_BODY, UP_TIMEOUT, UP_HEADERS, UP_IDEMPOTENT, UP_PACER, UP_SINK,
       UP_STATUS, UP_TIME };
/* UP_METHOD to UP_TIME, in that order */
static const char *const perform_keys[] = {"method",     "url",   "body", "timeout", "headers",
                                           "idempotent", "pacer", "sink", "status",  "time"};
#define PERFORM_KEYS (sizeof perform_keys / sizeof perform_keys[0])

/* Push req[the key at upvalue up] and return its type: a raw get from a
 * table without a metatable, else a get that honours its __index. */
static int req_field(lua_State *L, const request *rq, int up) {
  lua_pushvalue(L, lua_upvalueindex(up));
  if (rq->plain) lua_rawget(L, 2);
  else lua_gettable(L, 2);
  return lua_type(L, -1);
}

/* req.idempotent, set by the call loop from the operation; without it the
 * method decides (POST and PATCH are not idempotent). */
static int request_idempotent(lua_State *L, const request *rq) {
  int idem;
  if (req_field(L, rq, UP_IDEMPOTENT) == LUA_TBOOLEAN) idem = lua_toboolean(L, -1);
  else idem = strcmp(rq->method, "POST") != 0 && strcmp(rq->method, "PATCH") != 0;
  lua_pop(L, 1);
  return idem;
}

static void read_request(lua_State *L, const pa_client *c, request *rq) {
  char err[256];
  rq->plain = !lua_getmetatable(L, 2);
  if (!rq->plain) lua_pop(L, 1);
  req_field(L, rq, UP_METHOD);
  rq->method = lua_tostring(L, -1);
  req_field(L, rq, UP_URL);
  rq->url = lua_tostring(L, -1);
  req_field(L, rq, UP_BODY);
  rq->body = NULL;
  rq->body_len = 0;
  if (lua_type(L, -1) == LUA_TSTRING) rq->body = lua_tolstring(L, -1, &rq->body_len);
  else if (!lua_isnil(L, -1)) pa_error_raise(L, "request body must be a string");
  lua_pop(L, 3);
  if (rq->method == NULL || rq->url == NULL) pa_error_raise(L, "request needs method and url");
  /* The URL policy holds for every request, not only prepared ones. */
  if (!pa_client_url_ok(c, rq->url, err, sizeof err)) pa_error_raise(L, "%s", err);
  rq->timeout_ms = c->timeout_ms;
  if (req_field(L, rq, UP_TIMEOUT) == LUA_TNUMBER && lua_tonumber(L, -1) > 0)
    rq->timeout_ms = (long)(lua_tonumber(L, -1) * 1000.0);
  lua_pop(L, 1);
}

/* The request's next header line. The last request's list is kept: a
 * line equal to the one already at its place stays (the same headers every
 * call: no list made and freed per request); from the first that differs
 * the rest of the old list goes. */
static void append_line(lua_State *L, transfer *t, const char *line) {
  struct curl_slist *kept = *t->next_line, *added;
  if (kept != NULL && strcmp(kept->data, line) == 0) {
    t->next_line = &kept->next;
    return;
  }
  curl_slist_free_all(kept);
  *t->next_line = NULL;
  added = curl_slist_append(NULL, line);
  if (added == NULL) luaL_error(L, "out of memory");
  *t->next_line = added;
  t->next_line = &added->next;
}

/* Lines left from a longer list than this request's go. */
static void end_lines(transfer *t) {
  curl_slist_free_all(*t->next_line);
  *t->next_line = NULL;
}

/* Which headers the request names itself, so the transport adds no other. */
enum { HAS_CONTENT_TYPE = 1, HAS_USER_AGENT = 2, HAS_ACCEPT_ENCODING = 4 };

/* One header line in t->line, NUL-terminated: "Name: value"; "Name;" for
 * an empty value (libcurl's way to send one); "Name:" for false, which
 * makes libcurl send no such header. */
static const char *header_line(lua_State *L, transfer *t, const char *name, size_t nlen) {
  size_t vlen = 0;
  const char *value = lua_type(L, -1) == LUA_TBOOLEAN ? NULL : lua_tolstring(L, -1, &vlen);
  int ok;
  t->line.len = 0;
  ok = pa_buf_add(&t->line, name, nlen);
  if (value == NULL) ok = ok && pa_buf_add(&t->line, ":", 2);
  else if (vlen == 0) ok = ok && pa_buf_add(&t->line, ";", 2);
  else ok = ok && pa_buf_add(&t->line, ": ", 2) && pa_buf_add(&t->line, value, vlen + 1);
  if (!ok) luaL_error(L, "out of memory");
  return t->line.p;
}

/* The HAS_ flag of a header name (the first letter spares most compares). */
static int header_flag(const char *name) {
  switch (name[0] | 0x20) {
    case 'c': return strcasecmp(name, "Content-Type") == 0 ? HAS_CONTENT_TYPE : 0;
    case 'u': return strcasecmp(name, "User-Agent") == 0 ? HAS_USER_AGENT : 0;
    case 'a': return strcasecmp(name, "Accept-Encoding") == 0 ? HAS_ACCEPT_ENCODING : 0;
    default: return 0;
  }
}

/* Whether line is the header line of name and a string value. */
static int line_is(const char *line, const char *name, size_t nlen, const char *value, size_t vlen) {
  size_t len = strlen(line);
  if (vlen == 0) return len == nlen + 1 && memcmp(line, name, nlen) == 0 && line[nlen] == ';';
  return len == nlen + 2 + vlen && memcmp(line, name, nlen) == 0 && line[nlen] == ':' && line[nlen + 1] == ' ' &&
         memcmp(line + nlen + 2, value, vlen) == 0;
}

/* The entry at -2, -1 when it is a string name and value whose line is the
 * one kept at this place, made from an entry that passed the checks then:
 * the same bytes pass them again, so the line stays as it is. */
static int kept_entry(lua_State *L, transfer *t, int place, int checked, const char **name) {
  size_t nlen, vlen;
  const char *value;
  if (place >= checked || *t->next_line == NULL || lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
    return 0;
  *name = lua_tolstring(L, -2, &nlen);
  value = lua_tolstring(L, -1, &vlen);
  if (!line_is((*t->next_line)->data, *name, nlen, value, vlen)) return 0;
  t->next_line = &(*t->next_line)->next;
  return 1;
}

/* req.headers as libcurl's header lines, in C memory owned by the transfer
 * before any libcurl call, so an error raised here (a bad header) leaks
 * nothing. Returns the HAS_ flags of the headers given. The first
 * t->checked_lines lines of the kept list came from checked entries. */
static int add_header_lines(lua_State *L, transfer *t, int h) {
  int has = 0, place = 0, checked = t->checked_lines;
  t->checked_lines = 0; /* until this list is whole: an error half-way trusts none */
  lua_pushnil(L);
  for (; lua_next(L, h); place++) {
    size_t nlen;
    const char *name;
    if (!kept_entry(L, t, place, checked, &name)) {
      pa_client_check_header_entry(L); /* each entry checked as it is added */
      name = lua_tolstring(L, -2, &nlen);
      lua_pushvalue(L, -1); /* tolstring on a copy: never convert during next */
      append_line(L, t, header_line(L, t, name, nlen));
      lua_pop(L, 1);
    }
    has |= header_flag(name);
    lua_pop(L, 1);
  }
  t->checked_lines = place;
  return has;
}

/* A request libcurl sends a body with (CURLOPT_POSTFIELDS, set_method). */
static int sends_body(const request *rq) {
  return rq->body != NULL || strcmp(rq->method, "POST") == 0;
}

/* "Accept-Encoding: " and every encoding this libcurl decodes, the value
 * CURLOPT_ACCEPT_ENCODING "" would make it format anew for each request
 * (that option stays set: it is what turns decoding on). A line of our own
 * in the request's headers makes libcurl leave its own out. */
static void set_accept_encoding_line(transfer *t) {
  const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
  const char *with_zlib = (v->features & CURL_VERSION_LIBZ) ? "deflate, gzip" : NULL;
  const char *more[2];
  size_t n = 0, i;
  int len;
  if (v->features & CURL_VERSION_BROTLI) more[n++] = "br";
  if (v->features & CURL_VERSION_ZSTD) more[n++] = "zstd";
  len = snprintf(t->accept_encoding_line, sizeof t->accept_encoding_line, "Accept-Encoding: %s",
                 with_zlib ? with_zlib : (n ? more[0] : "identity"));
  for (i = with_zlib ? 0 : 1; i < n && len > 0; i++)
    len += snprintf(t->accept_encoding_line + len, sizeof t->accept_encoding_line - (size_t)len, ", %s", more[i]);
}

static void build_header_list(lua_State *L, transfer *t, const request *rq) {
  int has = 0;
  t->next_line = &t->slist;
  if (req_field(L, rq, UP_HEADERS) != LUA_TNIL) {
    luaL_checktype(L, -1, LUA_TTABLE);
    has = add_header_lines(L, t, lua_gettop(L));
  }
  lua_pop(L, 1);
  /* With a body: no 100-continue round trip, and no form Content-Type
   * libcurl would invent. Without one libcurl adds neither. */
  if (sends_body(rq)) {
    append_line(L, t, "Expect:");
    if (!(has & HAS_CONTENT_TYPE)) append_line(L, t, "Content-Type:");
  }
  /* The client's user_agent, else this transport's name: a line of our own,
   * so libcurl formats no User-Agent header per request. */
  if (!(has & HAS_USER_AGENT)) append_line(L, t, t->user_agent_line);
  if (!(has & HAS_ACCEPT_ENCODING)) append_line(L, t, t->accept_encoding_line);
  end_lines(t);
}

/* Whether the environment names a proxy for libcurl (libcurl's
 * documentation, CURLOPT_PROXY: http_proxy, https_proxy, all_proxy, the
 * latter two in capitals too; HTTP_PROXY is read here though libcurl
 * ignores it, which only keeps the environment's way). */
static int proxy_in_environment(void) {
  static const char *const names[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                      "all_proxy", "ALL_PROXY"};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v != NULL && v[0] != '\0') return 1;
  }
  return 0;
}

/* No proxy, said to libcurl outright: without CURLOPT_PROXY and
 * CURLOPT_NOPROXY it reads six proxy variables for every request. When
 * the handle is made with none of them set, no proxy is what they say. */
static void set_no_proxy(transfer *t, const char **bad) {
  SETOPT(t, CURLOPT_PROXY, "");
  SETOPT(t, CURLOPT_NOPROXY, "");
}

/* The client's policy, set once on a new handle: protocols, connect
 * timeout, TLS always verified, proxy, size cap, and the callbacks. */
static void set_policy(transfer *t, const pa_client *c, const char **bad) {
  SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf);
  SETOPT(t, CURLOPT_PROTOCOLS_STR, c->allow_http ? "http,https" : "https");
  SETOPT(t, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  SETOPT(t, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is the caller's decision */
  SETOPT(t, CURLOPT_NOSIGNAL, 1L);
  SETOPT(t, CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT(t, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding libcurl can decode */
  SETOPT(t, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  SETOPT(t, CURLOPT_SSL_VERIFYPEER, 1L);
  SETOPT(t, CURLOPT_SSL_VERIFYHOST, 2L);
  if (c->ca_file) {
    SETOPT(t, CURLOPT_CAINFO, c->ca_file);
    SETOPT(t, CURLOPT_CAPATH, SYSTEM_CA_PATH); /* ca_file adds to the system CAs */
  }
  if (c->proxy_mode == 1) SETOPT(t, CURLOPT_PROXY, c->proxy);
  else if (c->proxy_mode == 2 || !proxy_in_environment()) set_no_proxy(t, bad);
  SETOPT(t, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
  SETOPT(t, CURLOPT_WRITEFUNCTION, on_body);
  SETOPT(t, CURLOPT_WRITEDATA, (void *)t);
  SETOPT(t, CURLOPT_HEADERFUNCTION, on_header);
  SETOPT(t, CURLOPT_HEADERDATA, (void *)t);
}

/* "User-Agent: " and the client's user_agent, else this transport's own
 * name with libcurl's version; NULL when memory runs out. */
static char *user_agent_line(const pa_client *c) {
  char dflt[128];
  const char *ua = c->user_agent;
  size_t n;
  char *line;
  if (ua == NULL) {
    snprintf(dflt, sizeof dflt, "planapi/%s libcurl/%s", PLANAPI_VERSION,
             curl_version_info(CURLVERSION_NOW)->version);
    ua = dflt;
  }
  n = strlen("User-Agent: ") + strlen(ua) + 1;
  line = (char *)malloc(n);
  if (line != NULL) snprintf(line, n, "User-Agent: %s", ua);
  return line;
}

/* The client's transfer state, made on its first perform with the client's
 * policy set. NULL with *bad naming an option libcurl refused. */
static transfer *transfer_of(lua_State *L, pa_client *c, const char **bad) {
  transfer *t = (transfer *)c->transport;
  if (t != NULL) return t;
  t = (transfer *)calloc(1, sizeof *t);
  if (t == NULL) {
    luaL_error(L, "out of memory");
    return NULL; /* not reached */
  }
  t->curl = curl_easy_init();
  t->user_agent_line = user_agent_line(c);
  set_accept_encoding_line(t);
  if (t->curl == NULL || t->user_agent_line == NULL) {
    transfer_free(t);
    luaL_error(L, "cannot make a libcurl handle (out of memory)");
    return NULL; /* not reached */
  }
  set_policy(t, c, bad);
  if (*bad != NULL) {
    transfer_free(t);
    return NULL;
  }
  c->transport = t;
  c->transport_free = transfer_free;
  return t;
}

/* The method and its body, every method option set so that none of the
 * last request's stays: back to a plain GET first, then this one. */
static void set_method(transfer *t, const request *rq, const char **bad) {
  int get = strcmp(rq->method, "GET") == 0;
  if (get && t->set && t->plain_get) return; /* the handle is a plain GET already */
  t->plain_get = get;
  SETOPT(t, CURLOPT_CUSTOMREQUEST, (char *)NULL);
  SETOPT(t, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
  SETOPT(t, CURLOPT_POSTFIELDS, (char *)NULL); /* no pointer into an earlier request's body */
  SETOPT(t, CURLOPT_NOBODY, 0L);
  SETOPT(t, CURLOPT_HTTPGET, 1L);
  if (get) return;
  if (strcmp(rq->method, "HEAD") == 0) {
    SETOPT(t, CURLOPT_NOBODY, 1L);
    return;
  }
  if (strcmp(rq->method, "POST") != 0) SETOPT(t, CURLOPT_CUSTOMREQUEST, rq->method);
  if (sends_body(rq)) {
    SETOPT(t, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    SETOPT(t, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
  }
}

/* What this request decides: URL, timeout, headers, method, progress
 * callback, and whether it needs a fresh connection. */
static void set_exchange(lua_State *L, transfer *t, const request *rq, const char **bad) {
  long fresh;
  int progress = pa_interrupt_armed(); /* the command line: Ctrl-C stops the transfer now */
  SETOPT(t, CURLOPT_URL, rq->url);
  if (!t->set || t->timeout_ms != rq->timeout_ms) SETOPT(t, CURLOPT_TIMEOUT_MS, rq->timeout_ms);
  if (!t->set || t->slist_set != t->slist) SETOPT(t, CURLOPT_HTTPHEADER, t->slist);
  set_method(t, rq, bad);
  if (!t->set || t->progress != progress) {
    if (progress) SETOPT(t, CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(t, CURLOPT_NOPROGRESS, progress ? 0L : 1L);
  }
  /* A write goes on a new connection. On a kept-alive one that died with
   * the request in flight, libcurl would quietly send it again on a fresh
   * connection: harmless for a read, a second write if the server had
   * carried out the first before dropping the connection. */
  fresh = request_idempotent(L, rq) ? 0L : 1L;
  if (!t->set || t->fresh != (int)fresh) SETOPT(t, CURLOPT_FRESH_CONNECT, fresh);
  t->timeout_ms = rq->timeout_ms;
  t->slist_set = t->slist;
  t->progress = progress;
  t->fresh = (int)fresh;
  t->set = *bad == NULL; /* after a refused option, set every one again next time */
}

/* Where the transport table holds the limiter of the last request. */
#define ANCHOR_PACER 0

/* Push the client's table of the Lua values the transport's caches refer
 * to (head_cache's strings at 1.., the last pacer at ANCHOR_PACER), made on
 * first use, and below it the client's user value table; returns the index
 * of the former. */
static int push_anchor(lua_State *L) {
  lua_getiuservalue(L, 1, 1);
  lua_rawgeti(L, -1, PA_UV_TRANSPORT);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_createtable(L, 2 * PA_HEADER_CACHE_LINES, 0);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, PA_UV_TRANSPORT);
  }
  return lua_gettop(L);
}

/* Whether the value at idx gives a pacer, in t->pacer: a local or shm
 * limiter, or a Redis pacer table. The limiter of the last request is not
 * read again: the same userdata gives the same pacer (a shm limiter closed
 * since confirms nothing, as no pacer would). */
static int pacer_of(lua_State *L, transfer *t, int idx) {
  t->rpacer.failed = 0;
  if (lua_type(L, idx) == LUA_TUSERDATA && lua_touserdata(L, idx) == t->pacer_ud) return 1;
  t->pacer_ud = NULL;
  memset(&t->rpacer, 0, sizeof t->rpacer);
  if (!pacer_from(L, idx, &t->pacer, &t->rpacer)) return 0;
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    push_anchor(L);
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, ANCHOR_PACER);
    lua_pop(L, 2);
    t->pacer_ud = lua_touserdata(L, idx);
  }
  return 1;
}

/* req.pacer: the call loop's limiter, confirmed at the send. It stays
 * referenced by req (argument 2) for the whole transfer. */
static void set_pacer(lua_State *L, transfer *t, const request *rq, const char **bad) {
  int paced;
  req_field(L, rq, UP_PACER);
  paced = pacer_of(L, t, lua_gettop(L));
  lua_pop(L, 1);
  if (t->set && t->paced == paced) return; /* the callback and t->pacer as last time */
  SETOPT(t, CURLOPT_PREREQFUNCTION, paced ? on_prereq : NULL);
  SETOPT(t, CURLOPT_PREREQDATA, paced ? (void *)&t->pacer : NULL);
  t->paced = paced;
  if (*bad != NULL) t->set = 0;
}

/* req.sink: a 200 body goes to a file, written as path.part first. */
static void open_sink(lua_State *L, transfer *t, const request *rq) {
  if (req_field(L, rq, UP_SINK) != LUA_TNIL) {
    size_t plen;
    const char *path = lua_tolstring(L, -1, &plen);
    if (path == NULL || plen == 0) {
      pa_error_raise(L, "request sink must be a file path");
      return; /* not reached */
    }
    t->sink_path = (char *)malloc(plen + 1);
    t->sink_part = (char *)malloc(plen + 6);
    if (t->sink_path == NULL || t->sink_part == NULL) {
      luaL_error(L, "out of memory");
      return; /* not reached: the analyzer cannot tell */
    }
    memcpy(t->sink_path, path, plen + 1);
    memcpy(t->sink_part, path, plen);
    memcpy(t->sink_part + plen, ".part", 6);
    t->sink = fopen(t->sink_part, "wb");
    if (t->sink == NULL) {
      release_transfer(t);
      pa_error_raise(L, "cannot write the download to %s", path);
    }
    t->sink_bytes = 0;
  }
  lua_pop(L, 1);
}

/* nil and the error of a Redis pacer that could not answer: nothing sent. */
static int pacer_failed(lua_State *L, transfer *t, const redis_pacer *r) {
  char msg[300];
  release_transfer(t);
  snprintf(msg, sizeof msg, "rate limiter unavailable: redis: %s", r->err);
  lua_pushnil(L);
  pa_error_push(L, "transport", msg);
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "retryable");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "request_sent");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "pacer_failed");
  return 2;
}

/* Push res.headers, made with the client's header cache. */
static void push_headers(lua_State *L, transfer *t) {
  int anchor = push_anchor(L);
  pa_headers_push_cached(L, t->head.p ? t->head.p : "", t->head.len, &t->head_cache, anchor);
  lua_replace(L, anchor - 1); /* over the user value table */
  lua_pop(L, 1);              /* the anchor */
}

/* Push the response table; a body that went to req.sink is named by file. */
static void push_response(lua_State *L, transfer *t, int to_file, size_t sank_bytes) {
  long status = 0;
  double total = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(t->curl, CURLINFO_TOTAL_TIME, &total);
  lua_createtable(L, 0, 4); /* a fresh table: a raw set is what a set would do */
  lua_pushvalue(L, lua_upvalueindex(UP_STATUS));
  lua_pushinteger(L, (lua_Integer)status);
  lua_rawset(L, -3);
  lua_pushvalue(L, lua_upvalueindex(UP_HEADERS));
  push_headers(L, t);
  lua_rawset(L, -3);
  lua_pushvalue(L, lua_upvalueindex(UP_BODY));
  lua_pushlstring(L, t->body.p ? t->body.p : "", t->body.len);
  lua_rawset(L, -3);
  lua_pushvalue(L, lua_upvalueindex(UP_TIME));
  lua_pushnumber(L, (lua_Number)total);
  lua_rawset(L, -3);
  if (to_file) {
    lua_getfield(L, 2, "sink");
    lua_setfield(L, -2, "file");
    lua_pushinteger(L, (lua_Integer)sank_bytes);
    lua_setfield(L, -2, "size");
  }
}

/* After a good transfer: the response, or the error of a download that
 * could not be kept. */
static int succeed(lua_State *L, transfer *t) {
  int to_file = 0;
  size_t sank_bytes = 0;
  if (t->sink != NULL) {
    if (t->sink_mode == 0) { /* no body at all: an empty file is still a file */
      long code = 0;
      curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
      t->sink_mode = code == 200 ? 1 : 2;
    }
    to_file = t->sink_mode == 1;
    sank_bytes = t->sink_bytes;
    if (!finish_sink(t, 1)) {
      release_transfer(t);
      return pa_error_return(L, "transport", "cannot write the download to its file");
    }
  }
  push_response(L, t, to_file, sank_bytes);
  release_transfer(t);
  return 1;
}

/* client:perform(req) -> res | nil, err */
static int client_perform(lua_State *L) {
  pa_client *c = pa_client_check_open_up(L, UP_MT);
  const char *bad_opt = NULL;
  request rq;
  transfer *t;
  CURLcode rc;

  luaL_checktype(L, 2, LUA_TTABLE);
  if (pa_interrupted()) return interrupted_error(L, 0); /* Ctrl-C came before: send nothing */
  lua_settop(L, 2);
  read_request(L, c, &rq);
  t = transfer_of(L, c, &bad_opt);
  if (t == NULL) return pa_error_return(L, "config", bad_opt);
  release_transfer(t);
  build_header_list(L, t, &rq);
  t->errbuf[0] = '\0';
  t->over_cap = t->out_of_memory = 0;
  t->max_body = c->max_body;
  set_exchange(L, t, &rq, &bad_opt);
  set_pacer(L, t, &rq, &bad_opt);
  if (bad_opt != NULL) {
    release_transfer(t);
    return pa_error_return(L, "config", bad_opt);
  }
  open_sink(L, t, &rq);
  rc = curl_easy_perform(t->curl);
  if (rc != CURLE_OK && t->rpacer.failed) return pacer_failed(L, t, &t->rpacer);
  if (rc != CURLE_OK) return fail(L, c, t, rc);
  return succeed(L, t);
}

void pa_curl_open(lua_State *L) {
  size_t i;
  pa_class_push_methods(L, PA_CLIENT_MT);
  luaL_getmetatable(L, PA_CLIENT_MT);
  for (i = 0; i < PERFORM_KEYS; i++) lua_pushstring(L, perform_keys[i]);
  lua_pushcclosure(L, client_perform, 1 + (int)PERFORM_KEYS);
  lua_setfield(L, -2, "perform");
  lua_pop(L, 1);
}
