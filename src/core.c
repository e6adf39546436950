/* core.c: luaopen_planapi_core, the C half of planapi.
 * Registers every class and function into one table; the Lua facade
 * (lua/planapi/init.lua) builds the public API on top of it. */
#include <curl/curl.h>

#include "buf.h"
#include "client.h"
#include "compat.h"
#include "errors.h"
#include "interrupt.h"
#include "json.h"
#include "limiter.h"
#include "redact.h"
#include "url.h"
#include "version.h"
#include "xml.h"

#if defined(__GNUC__)
#define PA_EXPORT __attribute__((visibility("default")))
#else
#define PA_EXPORT
#endif

PA_EXPORT int luaopen_planapi_core(lua_State *L);
void pa_secure_open(lua_State *L);
void pa_fs_open(lua_State *L);
void pa_tcp_open(lua_State *L);
void pa_limiter_shm_open(lua_State *L);

int luaopen_planapi_core(lua_State *L) {
  /* libcurl's global init is thread-safe and idempotent since 7.84; it is
   * never undone, because another user of libcurl in the host may need it. */
  static int curl_ready = 0;
  if (!curl_ready) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return luaL_error(L, "planapi: curl_global_init failed");
    pa_xml_init();
    curl_ready = 1;
  }
  lua_newtable(L);
  pa_buf_open(L);
  pa_errors_open(L);
  pa_json_open(L);
  pa_url_open(L);
  pa_client_open(L);
  pa_transport_open(L);
  pa_limiter_open(L);
  pa_xml_open(L);
  pa_sign_open(L);
  pa_secure_open(L);
  pa_redact_open(L);
  pa_fs_open(L);
  pa_interrupt_open(L);
  pa_tcp_open(L);
  pa_limiter_shm_open(L);
  lua_pushliteral(L, PLANAPI_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
  lua_setfield(L, -2, "curl_version");
  return 1;
}
