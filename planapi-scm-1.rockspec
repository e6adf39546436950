rockspec_format = "3.0"
package = "planapi"
version = "scm-1"
source = {
  url = "git+https://github.com/planapi/planapi.git",
}
description = {
  summary = "Planfix (XML and REST) and Planado API clients for Lua, with a C core",
  detailed = [[
planapi speaks the Planfix XML API, the Planfix REST API and the Planado API
v2: spec-driven calls, page iterators, pacing to the documented rate limits,
retries that never duplicate a write, and one typed error for every failure.
The C core (libcurl, libxml2, OpenSSL libcrypto, lua-cjson) runs under Lua 5.4 and LuaJIT.]],
  license = "MIT",
  homepage = "https://github.com/planapi/planapi",
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson >= 2.1.0",
}
external_dependencies = {
  -- Only the library is looked up: Debian keeps curl/curl.h in a multiarch
  -- include directory that the compiler searches by itself.
  CURL = { library = "curl" },
  LIBXML2 = { header = "libxml2/libxml/parser.h", library = "xml2" },
  OPENSSL = { header = "openssl/evp.h", library = "crypto" },
}
build = {
  type = "builtin",
  -- the editor definitions (a Lua language server addon) and the API pages
  copy_directories = { "types", "docs" },
  install = {
    bin = { planapi = "bin/planapi" },
  },
  modules = {
    ["planapi.core"] = {
      sources = {
        "src/buf.c", "src/client.c", "src/compat.c", "src/core.c", "src/errors.c", "src/fs.c",
        "src/headers.c", "src/interrupt.c", "src/json.c", "src/limiter.c", "src/limiter_shm.c", "src/luax.c",
        "src/redact.c", "src/secure.c", "src/sign.c", "src/tcp.c", "src/transport_curl.c", "src/url.c",
        "src/utf8.c", "src/xml_decode.c", "src/xml_encode.c", "src/xml_quiet.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L", "_DEFAULT_SOURCE" },
      incdirs = { "$(CURL_INCDIR)", "$(LIBXML2_INCDIR)/libxml2", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(LIBXML2_LIBDIR)", "$(OPENSSL_LIBDIR)" },
      libraries = { "curl", "xml2", "crypto", "m" },
    },
    ["planapi"] = "lua/planapi/init.lua",
    ["planapi.cli"] = "lua/planapi/cli/init.lua",
    ["planapi.cli.args"] = "lua/planapi/cli/args.lua",
    ["planapi.cli.completion"] = "lua/planapi/cli/completion.lua",
    ["planapi.cli.help"] = "lua/planapi/cli/help.lua",
    ["planapi.cli.output"] = "lua/planapi/cli/output.lua",
    ["planapi.cli.profiles"] = "lua/planapi/cli/profiles.lua",
    ["planapi.cli.progress"] = "lua/planapi/cli/progress.lua",
    ["planapi.cli.receive"] = "lua/planapi/cli/receive.lua",
    ["planapi.client_base"] = "lua/planapi/client_base.lua",
    ["planapi.config_error"] = "lua/planapi/config_error.lua",
    ["planapi.cursor"] = "lua/planapi/cursor.lua",
    ["planapi.events"] = "lua/planapi/events/init.lua",
    ["planapi.events.ngx"] = "lua/planapi/events/ngx.lua",
    ["planapi.events.receiver"] = "lua/planapi/events/receiver.lua",
    ["planapi.events.server"] = "lua/planapi/events/server.lua",
    ["planapi.events.store"] = "lua/planapi/events/store.lua",
    ["planapi.events.store_redis"] = "lua/planapi/events/store_redis.lua",
    ["planapi.planfix_rest.multipart"] = "lua/planapi/planfix_rest/multipart.lua",
    ["planapi.limiter"] = "lua/planapi/limiter/init.lua",
    ["planapi.limiter.redis"] = "lua/planapi/limiter/redis.lua",
    ["planapi.limiter.redis_connection"] = "lua/planapi/limiter/redis_connection.lua",
    ["planapi.hooks"] = "lua/planapi/hooks.lua",
    ["planapi.log"] = "lua/planapi/log.lua",
    ["planapi.metrics"] = "lua/planapi/metrics.lua",
    ["planapi.options"] = "lua/planapi/options.lua",
    ["planapi.guard"] = "lua/planapi/guard.lua",
    ["planapi.pager"] = "lua/planapi/pager.lua",
    ["planapi.planado"] = "lua/planapi/planado/init.lua",
    ["planapi.planado.replay"] = "lua/planapi/planado/replay.lua",
    ["planapi.planado.create_recovery"] = "lua/planapi/planado/create_recovery.lua",
    ["planapi.planado.fields"] = "lua/planapi/planado/fields.lua",
    ["planapi.planado.resources"] = "lua/planapi/planado/resources.lua",
    ["planapi.planado.webhook"] = "lua/planapi/planado/webhook.lua",
    ["planapi.planfix_events"] = "lua/planapi/planfix_events/init.lua",
    ["planapi.planfix_fields.definitions"] = "lua/planapi/planfix_fields/definitions.lua",
    ["planapi.planfix_fields.types"] = "lua/planapi/planfix_fields/types.lua",
    ["planapi.planfix_rest"] = "lua/planapi/planfix_rest/init.lua",
    ["planapi.planfix_rest.errors"] = "lua/planapi/planfix_rest/errors.lua",
    ["planapi.planfix_rest.ops"] = "lua/planapi/planfix_rest/ops.lua",
    ["planapi.planfix_rest.params"] = "lua/planapi/planfix_rest/params.lua",
    ["planapi.planfix_rest.resources"] = "lua/planapi/planfix_rest/resources.lua",
    ["planapi.planfix_xml"] = "lua/planapi/planfix_xml/init.lua",
    ["planapi.planfix_xml.errors"] = "lua/planapi/planfix_xml/errors.lua",
    ["planapi.planfix_xml.params"] = "lua/planapi/planfix_xml/params.lua",
    ["planapi.planfix_xml.methods"] = "lua/planapi/planfix_xml/methods.lua",
    ["planapi.planfix_xml.resources"] = "lua/planapi/planfix_xml/resources.lua",
    ["planapi.policy"] = "lua/planapi/policy.lua",
    ["planapi.quota"] = "lua/planapi/quota.lua",
    ["planapi.scaffold"] = "lua/planapi/scaffold.lua",
    ["planapi.limiter.redis_protocol"] = "lua/planapi/limiter/redis_protocol.lua",
    ["planapi.suggest"] = "lua/planapi/suggest.lua",
    ["planapi.pretty_json"] = "lua/planapi/pretty_json.lua",
    ["planapi.testing"] = "lua/planapi/testing/init.lua",
    ["planapi.testing.answers"] = "lua/planapi/testing/answers.lua",
    ["planapi.testing.cassette"] = "lua/planapi/testing/cassette.lua",
    ["planapi.testing.cassette_mask"] = "lua/planapi/testing/cassette_mask.lua",
    ["planapi.testing.fake"] = "lua/planapi/testing/fake.lua",
    ["planapi.testing.payloads"] = "lua/planapi/testing/payloads.lua",
    ["planapi.testing.script"] = "lua/planapi/testing/script.lua",
    ["planapi.transport.ngx"] = "lua/planapi/transport/ngx.lua",
    ["planapi.webhook_store"] = "lua/planapi/webhook_store.lua",
  },
}
