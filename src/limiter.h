/* limiter.h: GCRA pacing state and its arithmetic. */
#ifndef PLANAPI_LIMITER_H
#define PLANAPI_LIMITER_H

#include "compat.h"
#include <time.h>

typedef struct {
  double interval;  /* T: seconds between requests at the sustained rate */
  double tolerance; /* tau: how far ahead of schedule a burst may run */
  double tat;       /* theoretical arrival time of the next request */
  double send_tat;  /* the same for the moments requests are actually written */
} pa_gcra;

/* A pacer C can consult at the very moment of sending (the libcurl
 * transport's CURLOPT_PREREQFUNCTION, after the connection is up):
 * confirm(state, now) -> 0 and the send is recorded, or the seconds to
 * wait before asking again (nothing recorded). now: CLOCK_MONOTONIC s. */
typedef double (*pa_confirm_fn)(void *state, double now);
typedef struct {
  pa_confirm_fn confirm;
  void *state;
} pa_pacer;

void pa_gcra_init(pa_gcra *g, double rate, double per, double burst, double margin);
/* Reserve the next slot at time now; returns the seconds to wait first. */
double pa_gcra_reserve(pa_gcra *g, double now);
/* A response arrived at now: the next slot is no earlier than now + interval. */
void pa_gcra_settle(pa_gcra *g, double now);
/* Give back the last reserved slot (its request was never sent). */
void pa_gcra_release(pa_gcra *g, double now);
/* A request is about to be written at now: 0 and the send is recorded when
 * it keeps the spacing from the sends before it, else the seconds to wait. */
double pa_gcra_confirm(pa_gcra *g, double now);
/* The pacer of the local or shm limiter userdata at idx: 1, or 0 when the
 * value is neither (or a closed shm limiter). */
int pa_pacer_get(lua_State *L, int idx, pa_pacer *p);
int pa_shm_pacer_get(lua_State *L, int idx, pa_pacer *p);
/* Seconds on CLOCK_MONOTONIC: the clock of core.monotime and of the pacers.
 * Inline: the shm limiter reads it too, and limiter.c calls into that file. */
static inline double pa_monotime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
/* Sleep that many seconds, resuming after signals. */
void pa_sleep(double seconds);
void pa_limiter_open(lua_State *L);
/* limiter_shm.c: core.shm_limiter, the scope shared through a mapped file. */
void pa_limiter_shm_open(lua_State *L);

#endif
