-- The user-style busted spec of examples/ (examples/integration/sandbox_user_spec.lua)
-- run as README tells a user: planapi installed by `luarocks make --tree`,
-- `eval "$(planapi sandbox start)"`, then busted on the spec, from a folder
-- outside the checkout. Debian's busted starts under Lua 5.1, whose paths
-- those of `luarocks path` for 5.4 are not: README runs it as
-- `lua5.4 "$(command -v busted)"`, and so does this spec.
local portable = require "portable"
local core = require "planapi.core"
local rock = require "user_rock"

local q = rock.shell_quote
local USER_SPEC = assert(os.getenv "PWD") .. "/examples/integration/sandbox_user_spec.lua"
local BUSTED = "lua5.4 \"$(command -v busted)\" -o TAP " .. q(USER_SPEC)

describe("examples/integration/sandbox_user_spec.lua against an installed planapi sandbox", function()
  local home, env, vars
  setup(function()
    home = portable.tmpdir()
    env = rock.env(home)
    local out, err, code = rock.run(env, home, "planapi sandbox start --dir " .. q(home .. "/run"))
    assert(code == 0, err)
    portable.write_file(home .. "/exports.sh", out)
    vars = rock.exports(out)
  end)
  teardown(function()
    rock.run(env, home, "planapi sandbox stop --dir " .. q(home .. "/run"))
    portable.rmtree(home)
  end)

  it("passes, its requests answered by that sandbox", function()
    local tap, err, code = rock.run(env, home, ("eval \"$(cat exports.sh)\" && %s"):format(BUSTED))
    assert.equal(0, code, tap .. err)
    assert.same({ "ok 1", "ok 2", "ok 3", "1..3" }, (function()
      local got = {}
      for _, l in ipairs(portable.lines(tap)) do got[#got + 1] = l:match "^ok %d+" or l:match "^1%.%.%d+$" end
      return got
    end)())
    -- Its last test met an injected 503 and retried: the sandbox logged both.
    local c = core.client { base_url = vars.PLANAPI_SANDBOX_CONTROL_URL, allow_http = true, timeout = 30 }
    local res = assert(c:perform(c:prepare { method = "GET", path = "log" }))
    c:close()
    local statuses = {}
    for _, e in ipairs(core.json_decode(res.body)) do statuses[#statuses + 1] = e.kind .. " " .. e.status end
    assert.same({ "planado 503", "planado 200" }, { statuses[1], statuses[2] })
  end)

  it("fails saying what to run when the sandbox's variables are not set", function()
    local tap, _, code = rock.run(env, home, BUSTED)
    assert.is_not.equal(0, code)
    assert.matches("is not set: run eval \"$(planapi sandbox start)\" first", tap, 1, true)
  end)
end)
