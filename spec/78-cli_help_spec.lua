-- The command line explains itself: `ops`/`methods`/`resources` and `help`
-- for the three APIs, the shell completion scripts run by bash and zsh, the
-- --rate and --limiter options against the sandbox's rate enforcement, and
-- the unknown-operation message that names the command listing them. The
-- REST expectations come from the official OpenAPI file (spec/helpers/
-- openapi.lua), not from the generated operation table the help prints.
local portable = require "portable"
local sandbox = require "sandbox"
local openapi = require "openapi"
local cli = require "planapi.cli"
local unpack = table.unpack or unpack -- LuaJIT: 5.1's

local doc = openapi.load()
local resolve, object_schema = openapi.tools(doc)

-- The CLI in this process (so the help is checked under both interpreters),
-- without any credentials: stdout, stderr, exit code.
local function run(...)
  local out, err = {}, {}
  local function sink(buf)
    return { write = function(self, ...) for _, s in ipairs { ... } do buf[#buf + 1] = s end return self end,
      flush = function() return true end }
  end
  local code = cli.main({ ... }, { getenv = function() return nil end, stdout = sink(out), stderr = sink(err),
    stdout_tty = false, stderr_tty = false })
  return table.concat(out), table.concat(err), code
end

local lines = portable.lines
local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- The operations of the OpenAPI file: { id, method, path, summary, tag, op, item }.
-- The count is checked against the operationIds in the file's text, so an
-- oracle that lost an operation fails here instead of checking less: Debian
-- 12's LuaJIT (luajit2 2.1-20230119) with the JIT on miscounts this walk
-- over the decoded document (`luajit -joff` counts right), so the walk runs
-- interpreted.
local function operations()
  local paths = {}
  for path in pairs(doc.paths) do paths[#paths + 1] = path end
  table.sort(paths)
  local out = {}
  for _, path in ipairs(paths) do
    local item = doc.paths[path]
    for _, method in ipairs { "get", "put", "post", "delete", "patch" } do
      local op = item[method]
      if op then
        out[#out + 1] = { id = op.operationId, method = method:upper(), path = path, summary = op.summary,
          tag = op.tags and op.tags[1], op = op, item = item }
      end
    end
  end
  local _, in_text = portable.read_file(openapi.PATH):gsub('"operationId"%s*:', "")
  assert(#out == in_text, ("the OpenAPI walk found %d operations, the file names %d"):format(#out, in_text))
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end
if jit then jit.off(operations, true) end
local OPS = operations()

-- The parameters of an operation as the OpenAPI file declares them:
-- { name, location, type (nil when the schema gives none directly), required }.
local function declared_params(o)
  local out = {}
  for _, list in ipairs { o.item.parameters or {}, o.op.parameters or {} } do
    for _, raw in ipairs(list) do
      local p = resolve(raw)
      local schema = resolve(p.schema or {})
      out[#out + 1] = { name = p.name, location = p["in"], type = schema.type,
        required = p["in"] == "path" or p.required == true }
    end
  end
  if o.op.requestBody then
    local content = resolve(o.op.requestBody).content
    local media = content["application/json"] or content["multipart/form-data"]
    local props, required = object_schema(media.schema)
    local is_required = {}
    for _, r in ipairs(required) do is_required[r] = true end
    for name, schema in pairs(props) do
      if schema.readOnly ~= true then -- OpenAPI: a readOnly property is not sent
        out[#out + 1] = { name = name, location = "body", type = schema.type, required = is_required[name] }
      end
    end
  end
  return out
end

-- The help's parameter rows: { name, type, location, wire, rest of the line }.
local function help_rows(text)
  local rows = {}
  for l in text:gmatch "[^\n]+" do
    local name, t, location, rest = l:match "^  (%S+)%s+(%a+)%s+(%a+)(.*)$"
    if name and name ~= "planapi" and location ~= "planfix" then
      rows[#rows + 1] = { name = name, type = t, location = location, wire = rest:match "%(sent as ([^)]+)%)",
        rest = rest }
    end
  end
  return rows
end

describe("planapi explains itself", function()
  describe("Planfix REST", function()
    it("help names every parameter of every operation of the OpenAPI file, its type and where it goes", function()
      assert.is_true(#OPS > 100)
      for _, o in ipairs(OPS) do
        local out, err, code = run("planfix-rest", "help", o.id)
        assert.equal(0, code, err)
        assert.equal(o.id .. ": " .. (o.summary or ""), lines(out)[1])
        assert.truthy(out:find(o.method .. " " .. o.path, 1, true), o.id)
        local rows = help_rows(out)
        local declared = declared_params(o)
        for _, p in ipairs(declared) do
          local found
          for _, r in ipairs(rows) do
            if r.location == p.location and (r.wire or r.name) == p.name then found = r end
          end
          assert.truthy(found, ("%s: %s (%s) is not in its help:\n%s"):format(o.id, p.name, p.location, out))
          if p.type then assert.equal(p.type, found.type, o.id .. " " .. p.name) end
          assert.equal(p.required and true or false, found.rest:find("required", 1, true) ~= nil, o.id .. " " .. p.name)
        end
        assert.equal(#declared, #rows, o.id .. ": a parameter the OpenAPI file does not declare")
      end
    end)

    it("help's example is a call the library accepts, with every required parameter", function()
      local rest = sandbox.rest()
      local args = require "planapi.cli.args"
      for _, o in ipairs(OPS) do
        local out = run("planfix-rest", "help", o.id)
        local example = out:match "example:\n  ([^\n]+)"
        local words = {}
        for w in example:gmatch "%S+" do words[#words + 1] = (w:gsub("^(%w+:=)'(.*)'$", "%1%2")) end
        assert.same({ "planapi", "planfix-rest", o.id }, { words[1], words[2], words[3] })
        local parsed = args.parse { unpack(words, 4) }
        args.rest_params(o.id, parsed.params)
        for _, p in ipairs(declared_params(o)) do
          if p.required then
            local given = parsed.params[p.name] ~= nil
            for k in pairs(parsed.params) do given = given or k:match("_(.+)$") == p.name end
            assert.is_true(given, o.id .. " example lacks " .. p.name)
          end
        end
        local ok, why = pcall(rest.prepare, rest, o.id, parsed.params)
        assert.is_true(ok, o.id .. ": " .. tostring(why))
      end
      rest:close()
    end)

    it("ops lists every operation with its summary, and a filter keeps exactly those it names", function()
      local out, err, code = run("planfix-rest", "ops")
      assert.equal(0, code, err)
      assert.equal(#OPS, #lines(out))
      for i, o in ipairs(OPS) do
        assert.matches("^" .. o.id:gsub("%-", "%%-") .. "%s+" .. o.method .. "%s+", lines(out)[i])
        assert.truthy(lines(out)[i]:find(o.summary or "", 1, true), o.id)
      end
      -- The oracle: operationId, summary, tag or path holding the filter, case-blind.
      for _, filter in ipairs { "task", "TASK", "Contact", "/file", "list", "custom fields", "by-id", "report" } do
        local expected = {}
        for _, o in ipairs(OPS) do
          for _, s in ipairs { o.id, o.summary or "", o.tag or "", o.path } do
            if s:lower():find(filter:lower(), 1, true) then expected[#expected + 1] = o.id break end
          end
        end
        out, err, code = run("planfix-rest", "ops", filter)
        assert.equal(0, code, err)
        local listed = {}
        for _, l in ipairs(lines(out)) do listed[#listed + 1] = l:match "^(%S+)" end
        assert.same(expected, listed, filter)
      end
      out, err, code = run("planfix-rest", "ops", "no-such-thing-%")
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("no Planfix REST operation matches", err)
    end)

    it("an unknown operation names the nearest and the CLI command that lists them, not a Lua call", function()
      for _, argv in ipairs { { "planfix-rest", "get-tsk-by-id" }, { "planfix-rest", "help", "get-tsk-by-id" } } do
        local out, err, code = run(unpack(argv))
        assert.equal(2, code)
        assert.equal("", out)
        assert.equal(1, #lines(err))
        assert.matches("unknown Planfix REST operation 'get%-tsk%-by%-id' %(did you mean get%-task%-by%-id", err)
        assert.matches("planapi planfix%-rest ops task\n$", err)
        assert.is_nil(err:find("operations()", 1, true))
        assert.is_nil(err:find("not configured", 1, true)) -- no credentials are needed to be told
      end
      local _, err, code = run("planfix-rest")
      assert.equal(2, code)
      assert.matches("planapi planfix%-rest ops", err)
    end)
  end)

  describe("Planfix XML", function()
    local xml = require "planapi.planfix_xml"

    it("methods lists the 79 documented methods, reads and writes as the table says", function()
      local out, err, code = run("planfix-xml", "methods")
      assert.equal(0, code, err)
      local l = lines(out)
      assert.equal(79, #l) -- Planfix's XML API documentation: 79 methods with auth.login
      for _, line in ipairs(l) do
        local name, what = line:match "^(%S+)%s+(%a+)"
        assert.equal(xml.method(name).writes and "writes" or "reads", what, name)
      end
      out = run("planfix-xml", "methods", "Handbook")
      local expected = {}
      for _, name in ipairs(xml.methods()) do
        if name:lower():find("handbook", 1, true) then expected[#expected + 1] = name end
      end
      local listed = {}
      for _, line in ipairs(lines(out)) do listed[#listed + 1] = line:match "^(%S+)" end
      assert.same(expected, listed)
      assert.is_true(#listed >= 9)
    end)

    -- Two tables written by hand from Planfix's XML API documentation agree:
    -- a method is paged (methods.lua) exactly when its parameters
    -- (params.lua) name pageCurrent; help shows them and a call to copy.
    it("help shows every method's documented parameters, paging as the methods table says, and an example", function()
      local params = require "planapi.planfix_xml.params"
      for _, name in ipairs(xml.methods()) do
        local out, err, code = run("planfix-xml", "help", name)
        assert.equal(0, code, err)
        assert.is_string(params[name], name)
        local shown = params[name] == "" and "none" or params[name]
        assert.truthy(out:find("\nparameters: " .. shown .. "\n", 1, true), name)
        assert.equal(xml.method(name).paged or false, params[name]:find("pageCurrent", 1, true) ~= nil, name)
        assert.matches("example:\n  planapi planfix%-xml " .. name:gsub("%.", "%%.") .. "[ \n]", out)
      end
      assert.matches("example:\n  planapi planfix%-xml file%.getListForTask task%.id=1 %-%-all\n",
        run("planfix-xml", "help", "file.getListForTask"))
    end)

    it("help shows a method's answer, that it is a write, and an example", function()
      local out, err, code = run("planfix-xml", "help", "task.getList")
      assert.equal(0, code, err)
      assert.matches("^task%.getList: reads a list of task, paged", out)
      assert.matches("example:\n  planapi planfix%-xml task%.getList %-%-all", out)
      out = run("planfix-xml", "help", "task.update")
      assert.matches("a write: never repeated", out)
      assert.matches("silent=1", out)
      local _, err2, code2 = run("planfix-xml", "task.gt")
      assert.equal(2, code2)
      assert.matches("unknown Planfix XML method 'task%.gt' %(did you mean task%.get", err2)
      assert.matches("planapi planfix%-xml methods task\n$", err2)
    end)
  end)

  describe("Planado", function()
    it("resources lists each resource with the actions the library gives it; help shows paths and fields", function()
      local out, err, code = run("planado", "resources")
      assert.equal(0, code, err)
      local pd = sandbox.planado()
      local names = require("planapi.planado.resources").names()
      assert.equal(#names, #lines(out))
      local method_of = { list = "all" }
      for i, line in ipairs(lines(out)) do
        local name, actions = line:match "^(%S+)%s+(.*)$"
        assert.equal(names[i], name)
        for action in actions:gmatch "%S+" do
          assert.is_function(pd[name][method_of[action] or action], name .. " " .. action)
        end
      end
      out, err, code = run("planado", "help", "jobs")
      assert.equal(0, code, err)
      assert.matches("\n  create%s+POST jobs\n", out)
      assert.matches("\n  history%s+GET jobs/{uuid}/history\n", out)
      for field in pairs(require "planapi.planado.fields".job) do
        assert.matches("\n  " .. field .. "%s+body", out)
      end
      assert.matches("\n  create%s+POST catalog/services\n", run("planado", "help", "services"))
      local _, err2, code2 = run("planado", "help", "job")
      assert.equal(2, code2)
      assert.matches("unknown planado resource 'job' %(did you mean jobs%?%)", err2)
      pd:close()
    end)
  end)

  describe("shell completion", function()
    local function script(shell)
      local out, err, code = run("completion", shell)
      assert.equal(0, code, err)
      local path = os.tmpname()
      portable.write_file(path, out)
      return path
    end

    -- bash itself: the script sourced, `complete -p` asked, and the function
    -- called as bash's completion calls it (COMP_LINE, COMP_POINT, COMP_WORDS, COMP_CWORD).
    local function bash_complete(path, typed)
      local test = table.concat({
        "source " .. path,
        "complete -p planapi",
        "COMP_LINE=" .. shell_quote(typed) .. "; COMP_POINT=${#COMP_LINE}",
        "read -r -a COMP_WORDS <<< \"$COMP_LINE\"; COMP_CWORD=${#COMP_WORDS[@]}",
        "[[ \"$COMP_LINE\" == *' ' ]] || COMP_CWORD=$((COMP_CWORD - 1))",
        "_planapi; printf '%s\\n' \"${COMPREPLY[@]}\"",
      }, "\n")
      local out, code = portable.run("bash --norc --noprofile -c " .. shell_quote(test))
      assert.equal(0, code, out)
      local l = lines(out)
      assert.equal("complete -F _planapi planapi", table.remove(l, 1))
      table.sort(l)
      return l
    end

    it("bash completes the APIs, every REST operation, its parameters, XML methods and Planado's actions", function()
      local path = script "bash"
      local ids = {}
      for _, o in ipairs(OPS) do ids[#ids + 1] = o.id end
      local all = bash_complete(path, "planapi planfix-rest ")
      local expected = { "fields", "help", "ops" }
      for _, id in ipairs(ids) do expected[#expected + 1] = id end
      table.sort(expected)
      assert.same(expected, all)
      assert.same({ "get-task-by-id" }, bash_complete(path, "planapi planfix-rest get-task-b"))
      assert.same({ "contact", "project", "task", "user" }, bash_complete(path, "planapi planfix-rest fields "))
      assert.same({ "fields=", "id=", "sourceId=" }, bash_complete(path, "planapi planfix-rest get-task-by-id "))
      assert.same({ "fields=" }, bash_complete(path, "planapi --format json planfix-rest get-task-by-id id=1 f"))
      assert.same({ "json", "jsonl" }, bash_complete(path, "planapi --format js"))
      assert.same({ "task.get", "task.getFilterList", "task.getList", "task.getMulti",
        "task.getPossibleStatusToChange" }, bash_complete(path, "planapi planfix-xml task.ge"))
      assert.same({ "create", "delete", "get", "history", "list", "update" },
        bash_complete(path, "planapi --profile work planado jobs "))
      assert.same({ "description=" }, bash_complete(path, "planapi planado jobs update job-1 desc"))
      assert.same({ "--limiter" }, bash_complete(path, "planapi --lim"))
      assert.same({ "planado", "planfix" }, bash_complete(path, "planapi receive --listen 127.0.0.1:8090 "))
      assert.same({ "completion", "config" }, bash_complete(path, "planapi co"))
      os.remove(path)
    end)

    -- zsh itself, interactive on a pseudo-terminal (zsh/zpty): the script
    -- autoloaded from $fpath by compinit, Tab typed, the line run; a planapi
    -- function stands in for the command and prints the words it got.
    it("zsh completes the same way, from the script autoloaded by its completion system", function()
      local _, code = portable.run("command -v zsh")
      if code ~= 0 then
        pending "zsh is not installed (tools/ensure-deps installs it)"
        return
      end
      local dir = portable.tmpdir()
      portable.write_file(dir .. "/_planapi", (run("completion", "zsh")))
      local out, ncode = portable.run("zsh -n " .. dir .. "/_planapi")
      assert.equal(0, ncode, out)
      local function typed(keys)
        return "zpty -n -w z " .. ("$'%s'"):format(keys:gsub("\t", "\\t"):gsub("\n", "\\n"))
      end
      local test = table.concat({
        "zmodload zsh/zpty",
        "zpty -b z 'zsh -f -i'",
        "zpty -w z " .. shell_quote("PS1='> '; fpath=(" .. dir .. " $fpath); autoload -Uz compinit; compinit -u -D; "
          .. "planapi() { print -r -- \"AR\"\"GS:$*:END\" }"),
        typed "planapi planfix-rest get-task-b\t\n",
        "zpty -r -m z out '*ARGS:*:END*'; print -r -- \"${${out##*ARGS:}%%:END*}\"",
        typed "planapi --format json planado jobs up\t x descr\t1\n",
        "zpty -r -m z out '*ARGS:*:END*'; print -r -- \"${${out##*ARGS:}%%:END*}\"",
        typed "planapi planfix-xml task.getL\t--a\t\n",
        "zpty -r -m z out '*ARGS:*:END*'; print -r -- \"${${out##*ARGS:}%%:END*}\"",
        "zpty -d z",
      }, "\n")
      out, code = portable.run("timeout 60 zsh -f -c " .. shell_quote(test))
      assert.equal(0, code, out)
      assert.same({ "planfix-rest get-task-by-id", "--format json planado jobs update x description=1",
        "planfix-xml task.getList --all" }, lines(out))
      portable.rmtree(dir)
    end)
  end)

  describe("--rate and --limiter", function()
    local function cli_run(args, extra)
      return portable.run(("%s bin/planapi %s"):format(sandbox.cli_env(extra), args))
    end

    before_each(function() sandbox.reset() end)

    it("refuses a malformed rate or scope with a usage error, before sending anything", function()
      for _, bad in ipairs { "--rate 0/s", "--rate 1/0s", "--rate fast", "--rate 1/1d", "--limiter shm:",
        "--limiter memcached://x", "--limiter redis://:pw-on-argv@127.0.0.1:6379/0" } do
        local out, code = cli_run("planfix-rest ping " .. bad)
        assert.equal(2, code, bad .. ": " .. out)
        assert.matches("^planapi: %-%-%a+", out)
        assert.is_nil(out:find("pw-on-argv", 1, true))
      end
      assert.equal(0, #sandbox.log(), "nothing was sent")
    end)

    -- The sandbox refuses two requests closer than 0.3 s (429, a violation).
    -- --rate 2/1s spaces them 0.5 s: none refused, and closer than the
    -- API's default 1 s; --rate 20/s is refused, so the option is what paces.
    it("--rate paces the calls as asked, under the sandbox's rate enforcement", function()
      sandbox.data { tasks = 10 }
      sandbox.config { rate = { enabled = true, interval = 0.3 } }
      local out, code = cli_run "planfix-rest get-task-list fields=id pageSize=2 --all --rate 2/1s --limiter local"
      assert.equal(0, code, out)
      assert.equal(10, #lines(out))
      local stats = sandbox.stats()
      assert.equal(0, stats.rate_violations)
      assert.is_true(stats.rate_min_gap >= 0.45 and stats.rate_min_gap < 0.95, tostring(stats.rate_min_gap))
      sandbox.reset()
      sandbox.data { tasks = 10 }
      sandbox.config { rate = { enabled = true, interval = 0.3 } }
      out, code = cli_run "planfix-rest get-task-list fields=id pageSize=2 --all --rate 20/s --limiter local"
      assert.equal(0, code, out) -- the 429s are retried
      assert.is_true(sandbox.stats().rate_violations > 0)
    end)

    -- Two commands at once at 0.5 s each: alone (local) their requests
    -- interleave closer than 0.3 s somewhere; sharing an shm scope, never.
    it("--limiter shm:FILE shares the pace between commands; local does not", function()
      local file = (os.getenv "PLANAPI_SANDBOX_DIR" or "sandbox/.run") .. "/cli-help-" .. os.time() .. ".limits"
      local function two_at_once(limiter)
        sandbox.reset()
        sandbox.data { tasks = 8 }
        sandbox.config { rate = { enabled = true, interval = 0.3 } }
        local cmd = ("%s bin/planapi planfix-rest get-task-list fields=id pageSize=2 --all --rate 2/1s --limiter %s"
          .. " > /dev/null"):format(sandbox.cli_env(), limiter)
        local out, code = portable.run(("%s & p1=$!; %s & p2=$!; wait $p1 && wait $p2"):format(cmd, cmd))
        assert.equal(0, code, out)
        return sandbox.stats()
      end
      local shared = two_at_once("shm:" .. file)
      assert.equal(0, shared.rate_violations)
      assert.truthy(io.open(file), "the shm scope's file")
      assert.is_true(two_at_once("local").rate_violations > 0)
      os.remove(file)
    end)
  end)
end)
