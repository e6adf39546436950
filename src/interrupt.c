/* interrupt.c: core.catch_interrupt() and core.interrupted().
 *   core.catch_interrupt()  SIGINT (Ctrl-C) from now on sets a flag instead
 *                           of ending the process (or raising Lua's
 *                           "interrupted!" from a hook, which cannot reach a
 *                           transfer blocked in libcurl). A second Ctrl-C
 *                           ends the process as usual.
 *   core.catch_interrupt(false)  back to the default (Ctrl-C ends the
 *                           process); the flag is cleared either way.
 *   core.interrupted() -> bool
 * A library never installs it by itself: the process decides what Ctrl-C
 * means (the planapi command does). While the flag is set, transfers abort
 * (kind "transport", err.interrupted = true), new ones are not sent, and
 * core.sleep returns at once. */
#include <signal.h>
#include <string.h>

#include "compat.h"
#include "errors.h"
#include "interrupt.h"
#include "luax.h"

static volatile sig_atomic_t interrupted_flag = 0;
static int armed = 0;

static void on_sigint(int sig) {
  (void)sig;
  interrupted_flag = 1;
}

int pa_interrupted(void) { return interrupted_flag != 0; }

int pa_interrupt_armed(void) { return armed; }

static int l_catch_interrupt(lua_State *L) {
  struct sigaction sa;
  int on = lua_isnoneornil(L, 1) || lua_toboolean(L, 1);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on ? on_sigint : SIG_DFL;
  sigemptyset(&sa.sa_mask);
  /* No SA_RESTART: a blocking poll or sleep returns EINTR and sees the
   * flag now, not at its timeout. SA_RESETHAND: the second Ctrl-C is the
   * default one, for a user who does not want to wait for the cleanup. */
  sa.sa_flags = on ? SA_RESETHAND : 0;
  if (sigaction(SIGINT, &sa, NULL) != 0) return pa_error_raise(L, "cannot set the SIGINT handler");
  interrupted_flag = 0;
  armed = on;
  lua_pushboolean(L, 1);
  return 1;
}

static int l_interrupted(lua_State *L) {
  lua_pushboolean(L, interrupted_flag != 0);
  return 1;
}

void pa_interrupt_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"catch_interrupt", l_catch_interrupt}, {"interrupted", l_interrupted}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
}
