/* tcp.c: a minimal blocking TCP client for plain Lua, shaped like a
 * luasocket / ngx.socket.tcp object so that Lua code written against that
 * shape (the Redis limiter) runs unchanged over any of them:
 *
 *   core.tcp_connect(host, port, timeout) -> sock | nil, err
 *   sock:send(data)        -> bytes sent (all of data) | nil, err
 *   sock:receive("*l")     -> one line without its LF (and a CR before it) | nil, err
 *   sock:receive(n)        -> exactly n bytes | nil, err
 *   sock:receive("*a")     -> everything until the peer closes | nil, err
 *   sock:settimeout(s)     -> 1   (seconds per call; nil or negative: no limit)
 *   sock:close()           -> 1   (idempotent; also __gc and __close)
 *
 * The descriptor is non-blocking and every wait is a poll(2) bounded by the
 * timeout, so one setting covers connect, send and receive alike. Errors are
 * planapi error objects (kind "transport", or "timeout" for a send or
 * receive that ran out of time), returned, never raised.
 *
 * While a call blocks it makes no Lua call: a Lua error could longjmp out
 * of it with an addrinfo list or a half-read line in hand. Everything that
 * outlives a call (the descriptor, the read buffer) belongs to the userdata,
 * so a later Lua error leaks nothing either. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "compat.h"
#include "errors.h"
#include "luax.h"
#include "tcp.h"

#define PA_TCP_MT "planapi.tcp"
/* A line longer than this is a peer that is not speaking a line protocol;
 * refusing it bounds the memory one bad peer can make us hold. */
#define PA_TCP_MAX_LINE ((size_t)1024 * 1024)
#define PA_TCP_READ_CHUNK 16384
/* The largest single receive(n): above any Redis bulk string (512 MiB). */
#define PA_TCP_MAX_RECEIVE ((lua_Number)(1024.0 * 1024.0 * 1024.0))

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* the BSDs: SO_NOSIGPIPE is set on the socket instead */
#endif

typedef struct {
  int fd;             /* -1 once closed */
  double timeout;     /* seconds per call; < 0: no limit */
  pa_buf in;          /* bytes received and not yet returned: [pos, in.len) */
  size_t pos;
} pa_tcp;

/* What a blocking step reports; turned into an error object after it. */
typedef enum { IO_OK, IO_TIMEOUT, IO_CLOSED, IO_ERRNO, IO_NOMEM, IO_TOO_LONG } io_status;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double deadline_for(double timeout) {
  return timeout < 0 ? -1.0 : now_seconds() + timeout;
}

/* Wait until fd is ready for events or the deadline (< 0: none) passes.
 * IO_OK when ready; errno is kept for IO_ERRNO. EINTR just waits again
 * with what is left of the time. */
static io_status wait_fd(int fd, short events, double deadline) {
  for (;;) {
    struct pollfd p;
    int ms = -1, r;
    if (deadline >= 0) {
      double left = deadline - now_seconds();
      if (left <= 0) return IO_TIMEOUT;
      ms = (int)(left * 1000.0) + 1; /* round up: never spin on a 0 ms poll */
    }
    p.fd = fd;
    p.events = events;
    p.revents = 0;
    r = poll(&p, 1, ms);
    if (r > 0) return IO_OK; /* errors and hangups show up in the next call */
    if (r == 0) {
      if (deadline >= 0 && now_seconds() >= deadline) return IO_TIMEOUT;
      continue;
    }
    if (errno != EINTR) return IO_ERRNO;
  }
}

static int set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL, 0);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return -1;
  return 0;
}

/* Connect one address before the deadline; the connected descriptor, or -1
 * with *status (and errno) saying why not. */
static int connect_one(const struct addrinfo *ai, double deadline, io_status *status) {
  int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
  int r, one = 1, soerr = 0;
  socklen_t len = sizeof soerr;
  *status = IO_ERRNO;
  if (fd < 0) return -1;
  if (set_nonblocking(fd) != 0) goto fail;
#ifdef SO_NOSIGPIPE
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  /* Commands are small and answered at once: Nagle's algorithm would hold
   * a write back waiting for the peer's delayed ACK (40 ms on Linux). */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  r = connect(fd, ai->ai_addr, ai->ai_addrlen);
  if (r == 0) {
    *status = IO_OK;
    return fd;
  }
  /* EINTR on connect: the attempt goes on in the background, as with EINPROGRESS. */
  if (errno != EINPROGRESS && errno != EINTR) goto fail;
  *status = wait_fd(fd, POLLOUT, deadline);
  if (*status != IO_OK) goto fail;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) goto fail;
  if (soerr != 0) {
    errno = soerr;
    goto fail;
  }
  *status = IO_OK;
  return fd;
fail:
  {
    int saved = errno;
    close(fd);
    errno = saved;
  }
  return -1;
}

static void tcp_destroy(pa_tcp *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  pa_buf_free(&s->in);
  s->pos = 0;
}

static pa_tcp *check_tcp(lua_State *L) {
  return (pa_tcp *)luaL_checkudata(L, 1, PA_TCP_MT);
}

static int tcp_close(lua_State *L) {
  tcp_destroy(check_tcp(L));
  lua_pushinteger(L, 1);
  return 1;
}

static double check_timeout(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1.0;
  {
    double t = (double)luaL_checknumber(L, idx);
    if (t != t) pa_error_raise(L, "a timeout must be a number of seconds, not NaN");
    return t < 0 ? -1.0 : t;
  }
}

/* core.tcp_connect(host, port, timeout_seconds) */
static int l_tcp_connect(lua_State *L) {
  const char *host = luaL_checkstring(L, 1);
  lua_Integer port = luaL_checkinteger(L, 2);
  double timeout = check_timeout(L, 3), deadline;
  struct addrinfo hints, *list = NULL, *ai;
  char service[16], msg[320];
  pa_tcp *s;
  io_status status = IO_ERRNO;
  int r, err = 0;

  if (port < 1 || port > 65535) return pa_error_raise(L, "tcp_connect: port must be 1 to 65535");
  /* The userdata first: once the descriptor exists, the GC owns it. */
  s = (pa_tcp *)lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  s->fd = -1;
  s->timeout = timeout;
  luaL_setmetatable(L, PA_TCP_MT);

  /* Blocking section: no Lua calls until list is freed. */
  deadline = deadline_for(timeout);
  snprintf(service, sizeof service, "%d", (int)port);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC; /* IPv4 and IPv6, in the resolver's order */
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  r = getaddrinfo(host, service, &hints, &list);
  if (r != 0) {
    snprintf(msg, sizeof msg, "cannot resolve %.200s: %s", host,
             r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
    return pa_error_return(L, "transport", msg);
  }
  /* Each address in turn until one answers; the deadline covers them all. */
  for (ai = list; ai != NULL; ai = ai->ai_next) {
    s->fd = connect_one(ai, deadline, &status);
    if (s->fd >= 0) break;
    err = errno;
    if (status == IO_TIMEOUT) break;
  }
  freeaddrinfo(list);
  if (s->fd >= 0) return 1;
  if (status == IO_TIMEOUT)
    snprintf(msg, sizeof msg, "connect to %.200s port %d timed out", host, (int)port);
  else
    snprintf(msg, sizeof msg, "connect to %.200s port %d: %s", host, (int)port,
             err ? strerror(err) : "no address");
  return pa_error_return(L, "transport", msg);
}

/* nil, err for a failed step (op: "send" or "receive"). */
static int io_error(lua_State *L, const char *op, io_status st, int err) {
  char msg[160];
  switch (st) {
    case IO_TIMEOUT:
      snprintf(msg, sizeof msg, "%s timed out", op);
      return pa_error_return(L, "timeout", msg);
    case IO_CLOSED:
      snprintf(msg, sizeof msg, "%s: connection closed", op);
      break;
    case IO_NOMEM:
      snprintf(msg, sizeof msg, "%s: out of memory", op);
      break;
    case IO_TOO_LONG:
      snprintf(msg, sizeof msg, "%s: line longer than %lu bytes", op, (unsigned long)PA_TCP_MAX_LINE);
      break;
    default:
      snprintf(msg, sizeof msg, "%s: %s", op, strerror(err));
      break;
  }
  return pa_error_return(L, "transport", msg);
}

/* sock:send(data) -> #data | nil, err  (everything is sent, or an error) */
static int tcp_send(lua_State *L) {
  pa_tcp *s = check_tcp(L);
  size_t len, sent = 0;
  const char *data = luaL_checklstring(L, 2, &len); /* stays on the stack: valid throughout */
  double deadline = deadline_for(s->timeout);
  io_status st = IO_OK;
  int err = 0;
  if (s->fd < 0) return io_error(L, "send", IO_CLOSED, 0);
  while (sent < len) {
    ssize_t n = send(s->fd, data + sent, len - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      st = wait_fd(s->fd, POLLOUT, deadline);
      if (st != IO_OK) {
        err = errno;
        break;
      }
    } else {
      st = (errno == EPIPE || errno == ECONNRESET) ? IO_CLOSED : IO_ERRNO;
      err = errno;
      break;
    }
  }
  if (sent < len) return io_error(L, "send", st, err);
  lua_pushinteger(L, (lua_Integer)len);
  return 1;
}

/* Read what the peer has into the buffer, waiting for at least one byte. */
static io_status fill(pa_tcp *s, double deadline, int *err) {
  if (s->pos > 0) { /* move the unread bytes down: the buffer only grows for a long reply */
    memmove(s->in.p, s->in.p + s->pos, s->in.len - s->pos);
    s->in.len -= s->pos;
    s->pos = 0;
  }
  if (!pa_buf_reserve(&s->in, PA_TCP_READ_CHUNK)) return IO_NOMEM;
  for (;;) {
    ssize_t n = recv(s->fd, s->in.p + s->in.len, s->in.cap - s->in.len - 1, 0);
    if (n > 0) {
      s->in.len += (size_t)n;
      return IO_OK;
    }
    if (n == 0) return IO_CLOSED;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      io_status st = wait_fd(s->fd, POLLIN, deadline);
      if (st != IO_OK) {
        *err = errno;
        return st;
      }
      continue;
    }
    *err = errno;
    return errno == ECONNRESET ? IO_CLOSED : IO_ERRNO;
  }
}

/* Push n buffered bytes and drop them from the buffer. */
static void take(lua_State *L, pa_tcp *s, size_t n, size_t skip) {
  lua_pushlstring(L, s->in.p + s->pos, n);
  s->pos += n + skip;
  if (s->pos == s->in.len) s->pos = s->in.len = 0;
}

/* The digits of a RESP integer reply (":<digits>\r\n", len bytes after the
 * colon, the newline included) into *out. strtoll needs a NUL-terminated
 * string and the read buffer has none after the line, so the line is copied
 * first (an integer needs at most 20 characters and a sign). */
static int parse_integer_reply(const char *digits, size_t len, long long *out) {
  char text[32];
  char *stop;
  if (len >= sizeof text) return 0;
  memcpy(text, digits, len);
  text[len] = '\0';
  errno = 0;
  *out = strtoll(text, &stop, 10);
  return errno == 0 && stop > text && (*stop == '\r' || *stop == '\n');
}

/* For a pacer inside libcurl's callbacks, where no Lua may run: write cmd,
 * read one RESP integer reply. 1 and *out, or 0 and why in err (an error
 * reply's text, or the failure to talk). */
int pa_tcp_int_exchange(void *sock, const char *cmd, size_t len, long long *out, char *err, size_t errlen) {
  pa_tcp *s = (pa_tcp *)sock;
  double deadline = deadline_for(s->timeout);
  size_t sent = 0;
  int e = 0;
  if (s->fd < 0) {
    snprintf(err, errlen, "the connection is closed");
    return 0;
  }
  while (sent < len) {
    ssize_t n = send(s->fd, cmd + sent, len - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_fd(s->fd, POLLOUT, deadline) == IO_OK) continue;
      snprintf(err, errlen, "send timed out");
      return 0;
    }
    snprintf(err, errlen, "send failed: %s", strerror(errno));
    return 0;
  }
  for (;;) {
    const char *line = s->in.p ? s->in.p + s->pos : NULL;
    const char *end = line ? memchr(line, '\n', s->in.len - s->pos) : NULL;
    if (end != NULL) {
      size_t n = (size_t)(end - line) + 1;
      int ok = 0;
      if (line[0] == ':') {
        ok = parse_integer_reply(line + 1, n - 1, out);
        if (!ok) snprintf(err, errlen, "a malformed integer reply");
      } else {
        int shown = (int)(n > 2 ? n - 2 : 0);
        snprintf(err, errlen, "%.*s", shown > 200 ? 200 : shown, line[0] == '-' ? line + 1 : line);
      }
      s->pos += n;
      if (s->pos == s->in.len) s->pos = s->in.len = 0;
      return ok;
    }
    {
      io_status st = fill(s, deadline, &e);
      if (st != IO_OK) {
        snprintf(err, errlen, "%s", st == IO_TIMEOUT ? "timed out" : st == IO_CLOSED ? "connection closed" : strerror(e));
        return 0;
      }
    }
  }
}

void *pa_tcp_test(lua_State *L, int idx) { return luaL_testudata(L, idx, PA_TCP_MT); }

/* core.is_tcp(v): v is a socket of core.tcp_connect (not a cosocket). */
static int l_is_tcp(lua_State *L) {
  lua_pushboolean(L, pa_tcp_test(L, 1) != NULL);
  return 1;
}

/* sock:receive(pattern) with pattern "*l" (default), "*a" or a byte count */
static int tcp_receive(lua_State *L) {
  pa_tcp *s = check_tcp(L);
  double deadline = deadline_for(s->timeout);
  io_status st;
  int err = 0;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Number want = lua_tonumber(L, 2);
    size_t n;
    if (!(want >= 0 && want <= PA_TCP_MAX_RECEIVE) || want != floor(want))
      return pa_error_raise(L, "receive: the byte count must be a whole number from 0 to 2^30");
    n = (size_t)want;
    if (s->fd < 0) return io_error(L, "receive", IO_CLOSED, 0);
    while (s->in.len - s->pos < n) {
      if (!pa_buf_reserve(&s->in, n - (s->in.len - s->pos))) return io_error(L, "receive", IO_NOMEM, 0);
      st = fill(s, deadline, &err);
      if (st != IO_OK) return io_error(L, "receive", st, err);
    }
    take(L, s, n, 0);
    return 1;
  } else {
    const char *pattern = luaL_optstring(L, 2, "*l");
    if (strcmp(pattern, "*l") == 0 || strcmp(pattern, "l") == 0) {
      size_t scanned = 0; /* bytes already searched for LF, relative to pos */
      if (s->fd < 0) return io_error(L, "receive", IO_CLOSED, 0);
      for (;;) {
        size_t avail = s->in.len - s->pos;
        const char *nl = avail > scanned ? memchr(s->in.p + s->pos + scanned, '\n', avail - scanned) : NULL;
        if (nl != NULL) {
          size_t n = (size_t)(nl - (s->in.p + s->pos));
          size_t keep = (n > 0 && s->in.p[s->pos + n - 1] == '\r') ? n - 1 : n;
          take(L, s, keep, n - keep + 1);
          return 1;
        }
        scanned = avail;
        if (avail >= PA_TCP_MAX_LINE) return io_error(L, "receive", IO_TOO_LONG, 0);
        st = fill(s, deadline, &err);
        if (st != IO_OK) return io_error(L, "receive", st, err);
      }
    }
    if (strcmp(pattern, "*a") == 0 || strcmp(pattern, "a") == 0) {
      if (s->fd < 0) return io_error(L, "receive", IO_CLOSED, 0);
      while ((st = fill(s, deadline, &err)) == IO_OK) {
      }
      if (st != IO_CLOSED) return io_error(L, "receive", st, err);
      take(L, s, s->in.len - s->pos, 0);
      return 1;
    }
    return pa_error_raise(L, "receive: pattern must be \"*l\", \"*a\" or a byte count (got %s)", pattern);
  }
}

/* sock:settimeout(seconds): nil or negative waits without limit. */
static int tcp_settimeout(lua_State *L) {
  pa_tcp *s = check_tcp(L);
  s->timeout = check_timeout(L, 2);
  lua_pushinteger(L, 1);
  return 1;
}

static int tcp_tostring(lua_State *L) {
  pa_tcp *s = check_tcp(L);
  if (s->fd < 0)
    lua_pushliteral(L, "planapi.tcp (closed)");
  else
    lua_pushfstring(L, "planapi.tcp (fd %d)", s->fd);
  return 1;
}

void pa_tcp_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"send", tcp_send},             {"receive", tcp_receive},
                                     {"settimeout", tcp_settimeout}, {"close", tcp_close},
                                     {NULL, NULL}};
  static const pa_class tcp_class = {PA_TCP_MT, methods, tcp_close, tcp_close, tcp_tostring};
  static const luaL_Reg fns[] = {{"tcp_connect", l_tcp_connect}, {"is_tcp", l_is_tcp}, {NULL, NULL}};
  pa_module_add(L, &tcp_class, fns);
}
