/* secure.c: comparisons that must not leak timing.
 * core.secure_equals(a, b): constant-time string comparison (OpenSSL's
 * CRYPTO_memcmp) for shared secrets such as Planado's X-Planado-Secret. The
 * time depends only on the length of the expected value, never on how many
 * leading bytes match. */
#include <openssl/crypto.h>
#include <string.h>

#include "secure.h"

static int l_secure_equals(lua_State *L) {
  size_t glen, elen;
  const char *given = luaL_checklstring(L, 1, &glen);
  const char *expected = luaL_checklstring(L, 2, &elen);
  int same;
  if (glen == elen) {
    same = CRYPTO_memcmp(given, expected, elen) == 0;
  } else {
    /* Still spend the time of a full comparison, against itself. */
    (void)CRYPTO_memcmp(expected, expected, elen);
    same = 0;
  }
  lua_pushboolean(L, same);
  return 1;
}

void pa_secure_open(lua_State *L) {
  lua_pushcfunction(L, l_secure_equals);
  lua_setfield(L, -2, "secure_equals");
}
