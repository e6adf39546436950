-- The plugin-host example: a C program that embeds Lua 5.4 with planapi's
-- core linked in (examples/embed/host.c, `make embed`) runs a plugin that
-- lists tasks from the sandbox.
local portable = require "portable"
local sandbox = require "sandbox"

local HOST = "build/embed/planapi-host"

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Run a command with env vars (in dir, if given); stdout and stderr apart,
-- and the exit code.
local function run(cmd, env, dir)
  local errfile = os.tmpname()
  local prefix = {}
  for k, v in pairs(env or {}) do prefix[#prefix + 1] = k .. "=" .. shell_quote(v) end
  local cd = dir and ("cd " .. shell_quote(dir) .. " && ") or ""
  local p = assert(portable.popen(("%senv %s %s 2>%s"):format(cd, table.concat(prefix, " "), cmd, shell_quote(errfile))))
  local out = p:read "a"
  local ok, _, code = p:close()
  local f = assert(io.open(errfile, "rb"))
  local err = f:read "a"
  f:close()
  os.remove(errfile)
  return out, err, ok and 0 or code
end

local function sandbox_env(token)
  return {
    PLANFIX_REST_URL = sandbox.https_url "rest/", PLANFIX_TOKEN = token or sandbox.TOKEN,
    PLANAPI_CA_FILE = sandbox.env().ca_file,
  }
end

local function write_plugin(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

describe("the embedding host (examples/embed)", function()
  setup(function()
    local out, err, code = run("make --no-print-directory embed")
    assert.equal(0, code, out .. err)
    assert.is_nil(err:match "warning", err) -- -Werror makes a warning fail anyway
    assert.is_not_nil(io.open(HOST, "rb"), "make embed did not build " .. HOST)
  end)

  before_each(function() sandbox.reset() end)

  it("runs the plugin with the core preloaded, listing the seeded tasks", function()
    sandbox.data { tasks = 137 }
    local out, err, code = run(HOST .. " examples/embed/plugin.lua 2", sandbox_env())
    assert.equal(0, code, out .. err)
    assert.equal("", err)
    assert.matches("preloaded core: true", out, 1, true)
    assert.matches("core.so loaded from disk: false", out, 1, true) -- linked in, not from ./planapi/core.so
    assert.matches("tasks: 137\n", out, 1, true)
    assert.matches("  1. Task 1\n  2. Task 2\n", out, 1, true)
    assert.is_nil(out:find("3. Task", 1, true))
    assert.equal(2, #sandbox.log_of "rest") -- 100 + 37
  end)

  it("finds the Lua files from any working directory, or with -L", function()
    sandbox.data { tasks = 3 }
    local root = assert(portable.popen "pwd"):read "l"
    local out, err, code = run(("%s/%s %s/examples/embed/plugin.lua"):format(root, HOST, root), sandbox_env(), "/")
    assert.equal(0, code, out .. err)
    assert.matches("tasks: 3\n", out, 1, true)
    out, err, code = run(("%s/%s -L %s/lua %s/examples/embed/plugin.lua"):format(root, HOST, root, root),
      sandbox_env(), "/")
    assert.equal(0, code, out .. err)
    assert.matches("tasks: 3\n", out, 1, true)
    -- -L goes first in package.path; the plugin gets its arguments as lua5.4 gives them.
    local path = write_plugin 'print(package.path:match "^[^;]*", select("#", ...), table.concat({ ... }, ","), arg[0] ~= nil)'
    out, err, code = run(("%s/%s -L /some/dir %s a b"):format(root, HOST, path), {}, "/")
    os.remove(path)
    assert.equal(0, code, out .. err)
    assert.equal("/some/dir/?.lua\t2\ta,b\ttrue\n", out)
  end)

  it("a failing plugin gives a one-line error and a non-zero exit", function()
    -- An API error raised by the pager: the error object's tostring.
    local out, err, code = run(HOST .. " examples/embed/plugin.lua", sandbox_env "wrong-token")
    assert.is_not.equal(0, code)
    assert.matches("preloaded core: true", out, 1, true)
    assert.matches("^[^\n]+\n$", err)
    assert.matches("auth error", err, 1, true)
    assert.matches("HTTP 401", err, 1, true)
    assert.is_nil(err:find("wrong-token", 1, true)) -- secrets are redacted

    -- A planapi error object raised by the plugin itself.
    local path = write_plugin [[
      local planapi = require "planapi"
      error(planapi.error { kind = "config", message = "no such\nproject" })
    ]]
    out, err, code = run(HOST .. " " .. path)
    os.remove(path)
    assert.is_not.equal(0, code)
    assert.equal("", out)
    assert.matches("^[^\n]+\n$", err)
    assert.matches("config error", err, 1, true)
    assert.matches("no such project", err, 1, true)

    -- A syntax error, and a plugin that does not exist.
    path = write_plugin "local x = = 1\n"
    out, err, code = run(HOST .. " " .. path)
    os.remove(path)
    assert.is_not.equal(0, code)
    assert.matches("^[^\n]+\n$", err)
    out, err, code = run(HOST .. " /nonexistent/plugin.lua")
    assert.is_not.equal(0, code)
    assert.matches("^[^\n]*cannot open[^\n]*\n$", err)
  end)
end)
