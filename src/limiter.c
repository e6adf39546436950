/* limiter.c: request pacing with GCRA (the generic cell rate algorithm,
 * virtual scheduling form). One number of state, the theoretical arrival
 * time (TAT), makes it exact, burst-aware and cheap; the same arithmetic
 * later runs on shared memory or in Redis for limits shared by processes.
 *
 * The limiter never reads a clock nor sleeps: reserve(now) takes the time
 * from the caller and answers how long to wait, so Lua can inject a fake
 * clock in specs and ngx.sleep in OpenResty. */
#include "limiter.h"

#include <errno.h>
#include <math.h>
#include <time.h>

#include "errors.h"
#include "interrupt.h"
#include "luax.h"

#define PA_LIMITER_MT "planapi.limiter"


void pa_gcra_init(pa_gcra *g, double rate, double per, double burst, double margin) {
  g->interval = per / rate + margin;
  g->tolerance = g->interval * (burst - 1.0);
  g->tat = -INFINITY;
  g->send_tat = -INFINITY;
}

double pa_gcra_reserve(pa_gcra *g, double now) {
  double tat = g->tat > now ? g->tat : now;
  double allowed_at = tat - g->tolerance;
  g->tat = tat + g->interval;
  return allowed_at > now ? allowed_at - now : 0.0;
}

void pa_gcra_settle(pa_gcra *g, double now) {
  /* The server saw the request at some moment before its answer reached us
   * (now), and the next request cannot reach it before it leaves. So a
   * next slot no earlier than now + interval keeps the server's spacing
   * whatever the latency of either request; a burst allowance still applies. */
  if (g->tat < now + g->interval) g->tat = now + g->interval;
}

void pa_gcra_release(pa_gcra *g, double now) {
  /* A reserved slot that was never used (the request was not sent). */
  g->tat -= g->interval;
  if (g->tat < now) g->tat = now;
}

double pa_gcra_confirm(pa_gcra *g, double now) {
  /* GCRA again, on the moments requests are written rather than on the
   * moments they started waiting: a request that spent 150 ms opening a
   * connection is held here if another one went out less than an interval
   * ago. Nothing is recorded while the answer is "wait", so a caller that
   * gives up leaves no trace. */
  double tat = g->send_tat > now ? g->send_tat : now;
  if (tat - g->tolerance > now) return tat - g->tolerance - now;
  g->send_tat = tat + g->interval;
  /* The slots may lag the sends (requests that spent time connecting) by
   * up to one interval, no more: further on, waiters would pile up here
   * rather than queue for slots. Pushing the slots all the way to the
   * sends would make every request pay its own wake-up and set-up time. */
  if (g->tat < tat) g->tat = tat;
  return 0.0;
}

static double gcra_confirm_fn(void *state, double now) { return pa_gcra_confirm((pa_gcra *)state, now); }

int pa_pacer_get(lua_State *L, int idx, pa_pacer *p) {
  pa_gcra *g = (pa_gcra *)luaL_testudata(L, idx, PA_LIMITER_MT);
  if (g != NULL) {
    p->confirm = gcra_confirm_fn;
    p->state = g;
    return 1;
  }
  return pa_shm_pacer_get(L, idx, p);
}

void pa_sleep(double s) {
  struct timespec ts, rem;
  if (!(s > 0) || pa_interrupted()) return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  /* Ctrl-C (core.catch_interrupt) ends the wait: the next send is refused. */
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR && !pa_interrupted()) ts = rem;
}

static double check_positive(lua_State *L, int t, const char *name, double dflt) {
  double v = dflt;
  lua_getfield(L, t, name);
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) > 0))
      pa_error_raise(L, "limiter option '%s' must be a positive number", name);
    v = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* core.limiter{ rate = 1, per = 1, burst = 1, margin = 0 }
 * margin: seconds added to every interval. Requests leave exactly on
 * schedule but reach the server with varying delays (the first one pays
 * for the TLS handshake), so pacing at exactly the limit would now and
 * then arrive early; a few percent of slack keeps clear of the limit. */
static int limiter_new(lua_State *L) {
  double rate, per, burst, margin = 0.0;
  pa_gcra *g;
  luaL_checktype(L, 1, LUA_TTABLE);
  rate = check_positive(L, 1, "rate", 1.0);
  per = check_positive(L, 1, "per", 1.0);
  burst = check_positive(L, 1, "burst", 1.0);
  if (burst < 1.0) pa_error_raise(L, "limiter option 'burst' must be at least 1");
  lua_getfield(L, 1, "margin");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0))
      pa_error_raise(L, "limiter option 'margin' must be a number of seconds, 0 or more");
    margin = (double)lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  g = (pa_gcra *)lua_newuserdatauv(L, sizeof *g, 0);
  pa_gcra_init(g, rate, per, burst, margin);
  luaL_setmetatable(L, PA_LIMITER_MT);
  return 1;
}

static pa_gcra *check_limiter(lua_State *L) {
  return (pa_gcra *)luaL_checkudata(L, 1, PA_LIMITER_MT);
}

static int limiter_reserve(lua_State *L) {
  lua_pushnumber(L, (lua_Number)pa_gcra_reserve(check_limiter(L), (double)luaL_checknumber(L, 2)));
  return 1;
}

static int limiter_release(lua_State *L) {
  pa_gcra_release(check_limiter(L), (double)luaL_checknumber(L, 2));
  return 0;
}

static int limiter_settle(lua_State *L) {
  pa_gcra_settle(check_limiter(L), (double)luaL_checknumber(L, 2));
  return 0;
}

static int limiter_confirm(lua_State *L) {
  lua_pushnumber(L, (lua_Number)pa_gcra_confirm(check_limiter(L), (double)luaL_checknumber(L, 2)));
  return 1;
}

static int limiter_info(lua_State *L) {
  pa_gcra *g = check_limiter(L);
  lua_createtable(L, 0, 3);
  lua_pushnumber(L, (lua_Number)g->interval);
  lua_setfield(L, -2, "interval");
  lua_pushnumber(L, (lua_Number)(g->tolerance / g->interval + 1.0));
  lua_setfield(L, -2, "burst");
  lua_pushnumber(L, (lua_Number)g->tat);
  lua_setfield(L, -2, "tat");
  lua_pushnumber(L, (lua_Number)g->send_tat);
  lua_setfield(L, -2, "send_tat");
  return 1;
}

/* core.monotime(): seconds on a clock that never jumps (NTP, DST). */
static int l_monotime(lua_State *L) {
  lua_pushnumber(L, (lua_Number)pa_monotime());
  return 1;
}

/* core.sleep(seconds): blocking sleep for plain Lua (OpenResty passes ngx.sleep). */
static int l_sleep(lua_State *L) {
  pa_sleep((double)luaL_checknumber(L, 1));
  return 0;
}

void pa_limiter_open(lua_State *L) {
  static const luaL_Reg methods[] = {{"reserve", limiter_reserve}, {"release", limiter_release},
                                     {"settle", limiter_settle},   {"confirm", limiter_confirm},
                                     {"info", limiter_info},       {NULL, NULL}};
  static const pa_class limiter_class = {PA_LIMITER_MT, methods, NULL, NULL, NULL};
  static const luaL_Reg fns[] = {
      {"limiter", limiter_new}, {"monotime", l_monotime}, {"sleep", l_sleep}, {NULL, NULL}};
  pa_class_register(L, &limiter_class);
  luaL_setfuncs(L, fns, 0);
}
