/* sanitize-unpreload.c: built and used by tools/run-sanitize only (into
 * build/sanitize/unpreload.so, not instrumented). It comes second in the
 * LD_PRELOAD that build/sanitize/bin/lua5.4 gives lua5.4, after the ASan
 * runtime: once the dynamic loader has mapped both, it takes LD_PRELOAD out
 * of the environment, so the programs a Lua 5.4 process starts (sh, tr,
 * nginx, make and gcc, redis-server...) run without the runtime, whose
 * LeakSanitizer would otherwise report their own leaks and turn their exit
 * status into 23. A lua5.4 they start gets it back from the wrapper, which is
 * first in PATH. */
#include <stdlib.h>

__attribute__((constructor)) static void unpreload(void) {
  unsetenv("LD_PRELOAD");
}
