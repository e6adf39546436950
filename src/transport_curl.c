/* transport_curl.c: client:perform(req) -> res | nil, err, over libcurl.
 *
 * One easy handle per client, reset and fully configured before every
 * transfer (curl_easy_reset keeps live connections, so keep-alive holds
 * while no option leaks from one request into the next). The callbacks
 * only copy bytes into C buffers: they never touch Lua, so no Lua error can
 * longjmp through libcurl. Lua values are built after curl_easy_perform
 * has returned. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client.h"
#include "errors.h"
#include "interrupt.h"
#include "limiter.h"
#include "url.h"

/* Headers of one response beyond this are not an API talking. */
#define MAX_HEADER_BYTES ((size_t)256 * 1024)
/* Buffers larger than this are given back after a transfer, so an idle
 * client does not keep the memory of its largest response. */
#define KEEP_BUFFER_BYTES ((size_t)1024 * 1024)
/* Where OpenSSL finds the system CAs when ca_file adds one more. */
#define SYSTEM_CA_PATH "/etc/ssl/certs"

/* Close the sink; keep the file only when the transfer succeeded. */
static int finish_sink(pa_client *c, int success) {
  int ok = 1;
  if (c->sink) {
    ok = fclose(c->sink) == 0;
    c->sink = NULL;
    if (success && ok && c->sink_mode == 1) ok = rename(c->sink_part, c->sink_path) == 0;
    else remove(c->sink_part); /* nothing half-written is left behind */
  }
  free(c->sink_path);
  free(c->sink_part);
  c->sink_path = c->sink_part = NULL;
  c->sink_mode = 0;
  return ok;
}

void pa_client_release_transfer(pa_client *c) {
  finish_sink(c, 0);
  if (c->slist) curl_slist_free_all(c->slist);
  c->slist = NULL;
  if (c->body.cap > KEEP_BUFFER_BYTES) pa_buf_free(&c->body);
  if (c->head.cap > KEEP_BUFFER_BYTES) pa_buf_free(&c->head);
  c->body.len = c->head.len = 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
  pa_client *c = (pa_client *)ud;
  size_t n = size * nmemb;
  if (c->sink != NULL && c->sink_mode == 0) {
    /* Only a 200 is the file; any other answer (an XML error) is read. */
    long code = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
    c->sink_mode = code == 200 ? 1 : 2;
  }
  if (c->sink_mode == 1) {
    if (n > c->max_body - c->sink_bytes) {
      c->over_cap = 1;
      return 0;
    }
    if (fwrite(ptr, 1, n, c->sink) != n) {
      c->out_of_memory = 2; /* a write error: disk full, say */
      return 0;
    }
    c->sink_bytes += n;
    return n;
  }
  if (n > c->max_body - c->body.len) {
    c->over_cap = 1;
    return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
  }
  if (!pa_buf_add(&c->body, ptr, n)) {
    c->out_of_memory = 1;
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
  pa_client *c = (pa_client *)ud;
  size_t n = size * nitems;
  /* A status line starts a new response (after a 100 Continue or a proxy's
   * CONNECT answer): only the last one's headers describe the body. */
  if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) c->head.len = 0;
  if (c->head.len + n > MAX_HEADER_BYTES) {
    c->over_cap = 2;
    return 0;
  }
  if (!pa_buf_add(&c->head, ptr, n)) {
    c->out_of_memory = 1;
    return 0;
  }
  return n;
}

/* Push a table of the header block: names lower-cased, values trimmed,
 * repeated headers joined with ", ", folded lines appended, status lines
 * skipped. Pure: also used by the fuzz target and specs. */
void pa_headers_push(lua_State *L, const char *s, size_t len) {
  size_t pos = 0;
  char name[256];
  size_t nlen = 0; /* name of the last header, for folded lines */
  int t;
  lua_newtable(L);
  t = lua_gettop(L);
  while (pos < len) {
    size_t end = pos, vstart, vend, i;
    while (end < len && s[end] != '\n') end++;
    vend = end;
    if (vend > pos && s[vend - 1] == '\r') vend--;
    if (vend - pos >= 5 && memcmp(s + pos, "HTTP/", 5) == 0) {
      nlen = 0;
    } else if (vend > pos && (s[pos] == ' ' || s[pos] == '\t')) {
      if (nlen > 0) { /* obsolete line folding: continues the last value */
        vstart = pos;
        while (vstart < vend && (s[vstart] == ' ' || s[vstart] == '\t')) vstart++;
        lua_pushlstring(L, name, nlen);
        lua_pushlstring(L, name, nlen);
        lua_rawget(L, t); /* key, previous value */
        {
          luaL_Buffer b;
          size_t plen = 0;
          const char *prev = lua_tolstring(L, -1, &plen); /* with its length: a value may hold a NUL */
          luaL_buffinit(L, &b);
          if (prev) luaL_addlstring(&b, prev, plen);
          luaL_addchar(&b, ' ');
          luaL_addlstring(&b, s + vstart, vend - vstart);
          luaL_pushresult(&b);
        }
        lua_remove(L, -2);
        lua_rawset(L, t);
      }
    } else {
      const char *colon = memchr(s + pos, ':', vend - pos);
      nlen = 0;
      if (colon != NULL && colon > s + pos && (size_t)(colon - (s + pos)) < sizeof name) {
        nlen = (size_t)(colon - (s + pos));
        for (i = 0; i < nlen; i++) {
          char ch = s[pos + i];
          if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
          name[i] = ch;
          /* a control character (a bare CR, a NUL) is never in a field name:
           * the line is junk, not a header someone could copy onward */
          if ((unsigned char)ch < 0x20 || ch == 0x7f) break;
        }
        if (i < nlen) {
          nlen = 0;
          pos = end + 1;
          continue;
        }
        vstart = (size_t)(colon - s) + 1;
        while (vstart < vend && (s[vstart] == ' ' || s[vstart] == '\t')) vstart++;
        while (vend > vstart && (s[vend - 1] == ' ' || s[vend - 1] == '\t')) vend--;
        lua_pushlstring(L, name, nlen);
        lua_pushlstring(L, name, nlen);
        lua_rawget(L, t);
        if (lua_isstring(L, -1)) {
          luaL_Buffer b;
          size_t plen;
          const char *prev = lua_tolstring(L, -1, &plen);
          luaL_buffinit(L, &b);
          luaL_addlstring(&b, prev, plen);
          luaL_addstring(&b, ", ");
          luaL_addlstring(&b, s + vstart, vend - vstart);
          luaL_pushresult(&b);
          lua_remove(L, -2);
        } else {
          lua_pop(L, 1);
          lua_pushlstring(L, s + vstart, vend - vstart);
        }
        lua_rawset(L, t);
      }
    }
    pos = end + 1;
  }
}

static int l_parse_headers(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  pa_headers_push(L, s, len);
  return 1;
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
static int handshake_cut(pa_client *c) {
  long os_errno = 0;
  if (curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
      (os_errno == ECONNRESET || os_errno == EPIPE || os_errno == ECONNABORTED || os_errno == ETIMEDOUT ||
       os_errno == ENETRESET))
    return 1;
  return strstr(c->errbuf, "unexpected eof") != NULL || strstr(c->errbuf, "Connection reset") != NULL ||
         strstr(c->errbuf, "SSL_ERROR_SYSCALL") != NULL;
}

/* What a newcomer needs after libcurl's "SSL peer certificate or SSH
 * remote key was not OK": which certificates were trusted, and the option
 * that changes it. */
static const char *verify_hint(const pa_client *c, CURLcode rc) {
  if (rc != CURLE_PEER_FAILED_VERIFICATION) return "";
  if (strstr(c->errbuf, "subject name") || strstr(c->errbuf, "host name"))
    return " (the certificate is not for this host name: check the URL)";
  if (c->ca_file == NULL)
    return " (the server's certificate is not trusted by the system's CA store: for a private CA, "
           "such as a sandbox or a corporate proxy, set the client option ca_file to its PEM file)";
  return " (the server's certificate is not trusted by the client's ca_file: "
         "is it the CA that issued the server's certificate?)";
}

static int fail(lua_State *L, pa_client *c, CURLcode rc) {
  char msg[CURL_ERROR_SIZE + 512]; /* room for verify_hint */
  int retryable, maybe_sent;
  const char *kind;
  curl_off_t sent_bytes = 0;
  if (rc == CURLE_ABORTED_BY_CALLBACK && pa_interrupted()) {
    maybe_sent = !(curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &sent_bytes) == CURLE_OK && sent_bytes == 0);
    pa_client_release_transfer(c);
    return interrupted_error(L, maybe_sent);
  }
  if (c->over_cap == 1 || rc == CURLE_FILESIZE_EXCEEDED) {
    kind = "transport";
    retryable = 0;
    maybe_sent = 1;
    snprintf(msg, sizeof msg, "response body is larger than max_body (%lu bytes)",
             (unsigned long)c->max_body);
  } else if (c->over_cap == 2) {
    kind = "transport";
    retryable = 0;
    maybe_sent = 1;
    snprintf(msg, sizeof msg, "response headers are larger than %zu bytes", MAX_HEADER_BYTES);
  } else if (c->out_of_memory) {
    kind = "transport";
    retryable = 0;
    maybe_sent = 1;
    snprintf(msg, sizeof msg, c->out_of_memory == 2 ? "cannot write the download to its file"
                                                    : "out of memory while receiving the response");
  } else if (rc == CURLE_SSL_CONNECT_ERROR && handshake_cut(c)) {
    /* The connection died during the handshake (a reset, a close): a
     * network failure before anything was sent, not a certificate or TLS
     * configuration problem, so as retryable as a refused connect. */
    kind = "transport";
    retryable = 1;
    maybe_sent = 0;
    snprintf(msg, sizeof msg, "connection lost during the TLS handshake: %s", c->errbuf);
  } else {
    kind = classify(rc, &retryable, &maybe_sent);
    snprintf(msg, sizeof msg, "%s%s%s%s", curl_easy_strerror(rc), c->errbuf[0] ? ": " : "",
             c->errbuf, verify_hint(c, rc));
  }
  /* Bytes of request actually written: 0 proves the server got nothing. */
  if (maybe_sent && curl_easy_getinfo(c->curl, CURLINFO_REQUEST_SIZE, &sent_bytes) == CURLE_OK &&
      sent_bytes == 0)
    maybe_sent = 0;
  pa_client_release_transfer(c);
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

/* req.idempotent, set by the call loop from the operation; without it the
 * method decides (POST and PATCH are not idempotent). */
static int request_idempotent(lua_State *L, const char *method) {
  int idem;
  lua_getfield(L, 2, "idempotent");
  if (lua_type(L, -1) == LUA_TBOOLEAN) idem = lua_toboolean(L, -1);
  else idem = strcmp(method, "POST") != 0 && strcmp(method, "PATCH") != 0;
  lua_pop(L, 1);
  return idem;
}

#define SETOPT(c, opt, val)                                                   \
  do {                                                                        \
    if (curl_easy_setopt((c)->curl, (opt), (val)) != CURLE_OK) bad_opt = #opt; \
  } while (0)

int pa_client_perform(lua_State *L) {
  pa_client *c = pa_client_check(L, 1);
  const char *method, *url, *body = NULL, *bad_opt = NULL;
  size_t body_len = 0;
  long timeout_ms;
  char err[256];
  int has_ctype = 0, to_file = 0, paced;
  size_t sank_bytes = 0;
  pa_pacer pacer;
  redis_pacer rpacer;
  CURLcode rc;

  if (c->closed) return pa_error_raise(L, "the client is closed");
  luaL_checktype(L, 2, LUA_TTABLE);
  if (pa_interrupted()) return interrupted_error(L, 0); /* Ctrl-C came before: send nothing */
  lua_settop(L, 2);
  lua_getfield(L, 2, "method");
  method = lua_tostring(L, -1);
  lua_getfield(L, 2, "url");
  url = lua_tostring(L, -1);
  lua_getfield(L, 2, "body");
  if (lua_type(L, -1) == LUA_TSTRING) body = lua_tolstring(L, -1, &body_len);
  else if (!lua_isnil(L, -1)) return pa_error_raise(L, "request body must be a string");
  if (method == NULL || url == NULL) return pa_error_raise(L, "request needs method and url");
  /* The URL policy holds for every request, not only prepared ones. */
  if (!pa_url_check(url, c->allow_http, err, sizeof err)) return pa_error_raise(L, "%s", err);
  timeout_ms = c->timeout_ms;
  lua_getfield(L, 2, "timeout");
  if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) > 0)
    timeout_ms = (long)(lua_tonumber(L, -1) * 1000.0);
  lua_pop(L, 1);

  /* Header lines go into C memory owned by the client before any libcurl
   * call, so an error raised here (bad header) leaks nothing. */
  pa_client_release_transfer(c);
  lua_getfield(L, 2, "headers");
  if (!lua_isnil(L, -1)) {
    int h;
    luaL_checktype(L, -1, LUA_TTABLE);
    h = lua_gettop(L);
    pa_client_check_headers(L, h);
    lua_pushnil(L);
    while (lua_next(L, h)) {
      struct curl_slist *next;
      const char *name = lua_tostring(L, -2), *line;
      if (lua_type(L, -1) == LUA_TBOOLEAN) { /* false: send no such header */
        line = lua_pushfstring(L, "%s:", name);
      } else {
        lua_pushvalue(L, -1);
        line = lua_tostring(L, -1);
        /* "Name;" is libcurl's way to send a header with an empty value */
        line = line[0] ? lua_pushfstring(L, "%s: %s", name, line) : lua_pushfstring(L, "%s;", name);
        lua_remove(L, -2);
      }
      if (strcasecmp(name, "Content-Type") == 0) has_ctype = 1;
      next = curl_slist_append(c->slist, line);
      if (next == NULL) return luaL_error(L, "out of memory");
      c->slist = next;
      lua_pop(L, 2);
    }
  }
  lua_pop(L, 1);
  {
    /* No 100-continue round trip; no form Content-Type libcurl would invent. */
    struct curl_slist *next = curl_slist_append(c->slist, "Expect:");
    if (next == NULL) return luaL_error(L, "out of memory");
    c->slist = next;
    if (!has_ctype) {
      next = curl_slist_append(c->slist, "Content-Type:");
      if (next == NULL) return luaL_error(L, "out of memory");
      c->slist = next;
    }
  }

  curl_easy_reset(c->curl);
  c->errbuf[0] = '\0';
  c->over_cap = c->out_of_memory = 0;
  SETOPT(c, CURLOPT_ERRORBUFFER, c->errbuf);
  SETOPT(c, CURLOPT_URL, url);
  SETOPT(c, CURLOPT_PROTOCOLS_STR, c->allow_http ? "http,https" : "https");
  SETOPT(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  SETOPT(c, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is the caller's decision */
  SETOPT(c, CURLOPT_NOSIGNAL, 1L);
  SETOPT(c, CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT(c, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding libcurl can decode */
  SETOPT(c, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
  SETOPT(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  SETOPT(c, CURLOPT_SSL_VERIFYPEER, 1L);
  SETOPT(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (c->ca_file) {
    SETOPT(c, CURLOPT_CAINFO, c->ca_file);
    SETOPT(c, CURLOPT_CAPATH, SYSTEM_CA_PATH); /* ca_file adds to the system CAs */
  }
  if (c->proxy_mode == 1) SETOPT(c, CURLOPT_PROXY, c->proxy);
  else if (c->proxy_mode == 2) SETOPT(c, CURLOPT_PROXY, "");
  SETOPT(c, CURLOPT_USERAGENT, c->user_agent);
  SETOPT(c, CURLOPT_HTTPHEADER, c->slist);
  SETOPT(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
  SETOPT(c, CURLOPT_WRITEFUNCTION, on_body);
  SETOPT(c, CURLOPT_WRITEDATA, (void *)c);
  SETOPT(c, CURLOPT_HEADERFUNCTION, on_header);
  SETOPT(c, CURLOPT_HEADERDATA, (void *)c);
  if (pa_interrupt_armed()) { /* the command line: Ctrl-C stops the transfer now */
    SETOPT(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(c, CURLOPT_NOPROGRESS, 0L);
  }
  if (strcmp(method, "GET") == 0) {
    SETOPT(c, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(method, "HEAD") == 0) {
    SETOPT(c, CURLOPT_NOBODY, 1L);
  } else {
    if (strcmp(method, "POST") != 0) SETOPT(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL || strcmp(method, "POST") == 0) {
      /* The body stays alive in req (argument 2) for the whole transfer. */
      SETOPT(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
      SETOPT(c, CURLOPT_POSTFIELDS, body ? body : "");
    }
  }
  /* A write goes on a new connection. On a kept-alive one that died with
   * the request in flight, libcurl would quietly send it again on a fresh
   * connection: harmless for a read, a second write if the server had
   * carried out the first before dropping the connection. */
  if (!request_idempotent(L, method)) SETOPT(c, CURLOPT_FRESH_CONNECT, 1L);
  /* req.pacer: the call loop's local or shm limiter, confirmed at the send.
   * It stays referenced by req (argument 2) for the whole transfer. */
  lua_getfield(L, 2, "pacer");
  memset(&rpacer, 0, sizeof rpacer);
  paced = pacer_from(L, lua_gettop(L), &pacer, &rpacer);
  lua_pop(L, 1);
  if (paced) {
    SETOPT(c, CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(c, CURLOPT_PREREQDATA, (void *)&pacer);
  }
  if (bad_opt != NULL) {
    pa_client_release_transfer(c);
    return pa_error_return(L, "config", bad_opt);
  }

  lua_getfield(L, 2, "sink");
  if (!lua_isnil(L, -1)) {
    size_t plen;
    const char *path = lua_tolstring(L, -1, &plen);
    if (path == NULL || plen == 0) return pa_error_raise(L, "request sink must be a file path");
    c->sink_path = (char *)malloc(plen + 1);
    c->sink_part = (char *)malloc(plen + 6);
    if (c->sink_path == NULL || c->sink_part == NULL) return luaL_error(L, "out of memory");
    memcpy(c->sink_path, path, plen + 1);
    memcpy(c->sink_part, path, plen);
    memcpy(c->sink_part + plen, ".part", 6);
    c->sink = fopen(c->sink_part, "wb");
    if (c->sink == NULL) {
      pa_client_release_transfer(c);
      return pa_error_raise(L, "cannot write the download to %s", path);
    }
    c->sink_bytes = 0;
  }
  lua_pop(L, 1);

  rc = curl_easy_perform(c->curl);
  if (rc != CURLE_OK && rpacer.failed) {
    char msg[300];
    pa_client_release_transfer(c);
    snprintf(msg, sizeof msg, "rate limiter unavailable: redis: %s", rpacer.err);
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
  if (rc != CURLE_OK) return fail(L, c, rc);
  if (c->sink != NULL) {
    if (c->sink_mode == 0) { /* no body at all: an empty file is still a file */
      long code = 0;
      curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &code);
      c->sink_mode = code == 200 ? 1 : 2;
    }
    to_file = c->sink_mode == 1;
    sank_bytes = c->sink_bytes;
    if (!finish_sink(c, 1)) {
      pa_client_release_transfer(c);
      return pa_error_return(L, "transport", "cannot write the download to its file");
    }
  }

  {
    long status = 0;
    double total = 0;
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c->curl, CURLINFO_TOTAL_TIME, &total);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
    pa_headers_push(L, c->head.p ? c->head.p : "", c->head.len);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, c->body.p ? c->body.p : "", c->body.len);
    lua_setfield(L, -2, "body");
    lua_pushnumber(L, (lua_Number)total);
    lua_setfield(L, -2, "time");
    if (to_file) { /* the body went to req.sink */
      lua_getfield(L, 2, "sink");
      lua_setfield(L, -2, "file");
      lua_pushinteger(L, (lua_Integer)sank_bytes);
      lua_setfield(L, -2, "size");
    }
    pa_client_release_transfer(c);
  }
  return 1;
}

void pa_transport_open(lua_State *L) {
  lua_pushcfunction(L, l_parse_headers);
  lua_setfield(L, -2, "parse_headers");
}
