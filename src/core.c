/* core.c: luaopen_planapi_core, the C half of planapi.
 * Registers every class and function into one table; the Lua facade
 * (lua/planapi/init.lua) builds the public API on top of it. */
#include <curl/curl.h>

#include "buf.h"
#include "client.h"
#include "compat.h"
#include "errors.h"
#include "fs.h"
#include "headers.h"
#include "interrupt.h"
#include "json.h"
#include "limiter.h"
#include "redact.h"
#include "secure.h"
#include "tcp.h"
#include "transport_curl.h"
#include "url.h"
#include "version.h"
#include "xml.h"

#if defined(__GNUC__)
#define PA_EXPORT __attribute__((visibility("default")))
#else
#define PA_EXPORT
#endif

PA_EXPORT int luaopen_planapi_core(lua_State *L);

typedef void (*pa_opener)(lua_State *L);

/* Every part of the core, each adding its functions and classes to the
 * module table on the top of the stack. Order matters only where a part
 * extends another: the libcurl transport adds perform to the client. */
static const pa_opener openers[] = {
  pa_buf_open,     pa_errors_open, pa_json_open,   pa_url_open,     pa_client_open,
  pa_curl_open,    pa_headers_open, pa_limiter_open, pa_xml_open,   pa_sign_open,
  pa_secure_open,  pa_redact_open, pa_fs_open,     pa_interrupt_open, pa_tcp_open,
  pa_limiter_shm_open, NULL
};

int luaopen_planapi_core(lua_State *L) {
  /* libcurl's global init is thread-safe and idempotent since 7.84; it is
   * never undone, because another user of libcurl in the host may need it. */
  static int curl_ready = 0;
  size_t i;
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return luaL_error(L, "planapi: curl_global_init failed");
    pa_xml_init();
    curl_ready = 1;
  }
  lua_newtable(L);
  for (i = 0; openers[i] != NULL; i++) openers[i](L);
  lua_pushliteral(L, PLANAPI_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  return 1;
}
