-- The C core's layering, read by the linker's tools rather than by our
-- code: `nm` on the objects `make` built says which file calls which.
-- No two files of src/ call each other's functions both ways, the client
-- (configuration, prepare, decode, redaction) and the header parser call no
-- libcurl function, and tools/check-c-layering fails on a real cycle.
local portable = require "portable"
local OBJ = "build/" .. portable.lua .. "/obj"
-- By absolute path and without LUA_INIT: under tools/run-sanitize a wrapper
-- first in PATH would set LD_PRELOAD to the ASan runtime over the shim below,
-- and its LUA_INIT would load the sanitized core, which needs that runtime.
local LUA = "/usr/bin/" .. portable.lua
local CPATH = portable.cpath

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, out:gsub("rc=%d+%s*$", "")
end

local function undefined_symbols(object)
  local rc, out = run("nm -u " .. OBJ .. "/" .. object)
  assert.equal(0, rc, out)
  local names = {}
  for name in out:gmatch("U%s+(%S+)") do names[#names + 1] = name end
  return names
end

local function with_prefix(names, prefix)
  local found = {}
  for _, name in ipairs(names) do
    if name:sub(1, #prefix) == prefix then found[#found + 1] = name end
  end
  return found
end

describe("the C core's layering", function()
  it("has no pair of files in src/ that call each other", function()
    local rc, out = run("tools/check-c-layering " .. OBJ)
    assert.equal(0, rc, out)
  end)

  it("keeps libcurl out of the client and the header parser", function()
    for _, object in ipairs { "client.o", "headers.o" } do
      local names = undefined_symbols(object)
      assert.is_true(#names > 0, object .. " needs nothing at all? nm read no symbols")
      assert.same({}, with_prefix(names, "curl_"), object)
    end
    -- and the transport does call libcurl (the check above can see it)
    assert.is_true(#with_prefix(undefined_symbols("transport_curl.o"), "curl_easy_") > 0)
  end)

  it("the client calls no transport: only the transport calls the client", function()
    local client = undefined_symbols("client.o")
    assert.same({}, with_prefix(client, "pa_curl_"))
    assert.same({}, with_prefix(client, "pa_headers_"))
    assert.is_true(#with_prefix(undefined_symbols("transport_curl.o"), "pa_client_") > 0)
  end)

  -- An LD_PRELOAD shim counts libcurl's curl_easy_init calls (the dynamic
  -- linker's view, not ours) in a child that makes clients.
  it("a client holds no curl handle until its first perform, then keeps one", function()
    local dir = portable.tmpdir()
    local shim = io.open(dir .. "/count.c", "w")
    shim:write([[
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
static int inits;
static void report(void) {
  FILE *f = fopen(getenv("COUNT_FILE"), "w");
  if (f) { fprintf(f, "%d", inits); fclose(f); }
}
void *curl_easy_init(void) {
  static void *(*real)(void);
  if (!real) {
    /* libcurl came in with core.so, in its local scope: ask it by name */
    real = (void *(*)(void))dlsym(dlopen("libcurl.so.4", RTLD_NOW), "curl_easy_init");
    if (!real) abort();
    atexit(report);
  }
  inits++;
  return real();
}
]])
    shim:close()
    local rc, out = run(("cc -shared -fPIC -o %s/count.so %s/count.c -ldl"):format(dir, dir))
    assert.equal(0, rc, out)
    local function inits(script)
      local cmd = ("env -u LUA_INIT -u LUA_INIT_5_4 -u LUA_INIT_5_3 COUNT_FILE=%s/n LD_PRELOAD=%s/count.so %s -e %q")
        :format(dir, dir, LUA, ("package.cpath = %q .. ';' .. package.cpath; local core = require 'planapi.core'; %s")
          :format(CPATH, script))
      local code, output = run(cmd)
      assert.equal(0, code, output)
      local f = io.open(dir .. "/n")
      local n = f and tonumber(f:read("*a"))
      if f then f:close() end
      os.remove(dir .. "/n")
      return n or 0
    end
    -- prepare, decode, redact and close: no handle
    assert.equal(0, inits([[
      for i = 1, 3 do
        local c = core.client { base_url = 'https://a.example/' }
        c:decode(c:prepare { method = 'GET', path = 'x' } and { status = 200, body = '{}' })
        c:close()
      end]]))
    -- a client's first perform makes its handle; later ones reuse it (libcurl
    -- makes handles of its own too, so the counts are compared, not fixed)
    local function performs(n)
      return inits(([[
        local c = core.client { base_url = 'http://127.0.0.1:1/', allow_http = true, connect_timeout = 1 }
        for j = 1, %d do assert(not c:perform(c:prepare { method = 'GET', path = 'x' })) end
        c:close()]]):format(n))
    end
    local one = performs(1)
    assert.is_true(one >= 1)
    assert.equal(one, performs(3))
    portable.rmtree(dir)
  end)

  it("tools/check-c-layering finds a cycle between two objects", function()
    local dir = portable.tmpdir()
    local a = io.open(dir .. "/a.c", "w")
    a:write("int b_fn(void);\nint a_fn(void);\nint a_fn(void) { return b_fn() + 1; }\n")
    a:close()
    local b = io.open(dir .. "/b.c", "w")
    b:write("int a_fn(void);\nint b_fn(void);\nint b_fn(void) { return 2; }\nint b_other(void);\n" ..
      "int b_other(void) { return a_fn(); }\n")
    b:close()
    local rc, out = run(("cd %s && cc -c a.c b.c"):format(dir))
    assert.equal(0, rc, out)
    rc, out = run("tools/check-c-layering " .. dir)
    assert.equal(1, rc, out)
    assert.matches("mutual: a.o <%-> b.o", out)
    -- one way only is fine
    b = io.open(dir .. "/b.c", "w")
    b:write("int b_fn(void);\nint b_fn(void) { return 2; }\n")
    b:close()
    rc, out = run(("cd %s && cc -c b.c"):format(dir))
    assert.equal(0, rc, out)
    rc, out = run("tools/check-c-layering " .. dir)
    assert.equal(0, rc, out)
    portable.rmtree(dir)
  end)
end)
