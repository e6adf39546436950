/* limiter.h: GCRA pacing state and its arithmetic. */
#ifndef PLANAPI_LIMITER_H
#define PLANAPI_LIMITER_H

#include "compat.h"

typedef struct {
  double interval;  /* T: seconds between requests at the sustained rate */
  double tolerance; /* tau: how far ahead of schedule a burst may run */
  double tat;       /* theoretical arrival time of the next request */
} pa_gcra;

void pa_gcra_init(pa_gcra *g, double rate, double per, double burst, double margin);
/* Reserve the next slot at time now; returns the seconds to wait first. */
double pa_gcra_reserve(pa_gcra *g, double now);
/* A response arrived at now: the next slot is no earlier than now + interval. */
void pa_gcra_settle(pa_gcra *g, double now);
/* Give back the last reserved slot (its request was never sent). */
void pa_gcra_release(pa_gcra *g, double now);
void pa_limiter_open(lua_State *L);

#endif
