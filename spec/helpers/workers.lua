-- workers.lua: processes a spec starts together (spec/17, spec/59). Each runs a helper script
-- under the spec's own interpreter and module build, says it is ready and waits for the go
-- file; once all are ready the spec lets them go at once and reads the one line of JSON each
-- prints.
--   local results, dir = workers.run(4, "spec/helpers/x_worker.lua", function(i, dir) return { ... } end,
--     "ENV=1")                                       -- in the spec; remove dir when done
--   workers.ready_then_go(dir, me)                   -- in the worker, before its racing part
local core = require "planapi.core"
local portable = require "portable"

local M = {}

local LUA, CPATH = portable.lua, portable.cpath

local function exists(path)
  local f = io.open(path, "rb")
  return f ~= nil and f:close()
end

local function wait_for(path, what)
  local waited = 0
  while not exists(path) do
    assert(waited < 30, what .. " after 30 s")
    core.sleep(0.005)
    waited = waited + 0.005
  end
end

--- In a worker: say `me` is ready, then wait for the go file.
function M.ready_then_go(dir, me)
  assert(io.open(("%s/ready.%s"):format(dir, me), "w")):close()
  wait_for(dir .. "/go", "no go file")
end

--- In a worker: mark that `me` has come to the point called name.
function M.arrive(dir, name, me)
  assert(io.open(("%s/%s.%s"):format(dir, name, me), "w")):close()
end

--- In a worker: wait until workers 1..count have all come to name (bounded, about 10 s: a worker
-- that never comes shows in the spec's counts, not as a hang).
function M.wait_all(dir, name, count)
  for _ = 1, 2000 do
    local n = 0
    for i = 1, count do
      if exists(("%s/%s.%d"):format(dir, name, i)) then n = n + 1 end
    end
    if n == count then return end
    core.sleep(0.005)
  end
end

--- In the spec: n workers of script, args_of(i, dir) its arguments, env a prefix of the command
-- ("VAR=x"); returns what each printed (decoded) and the directory they shared.
function M.run(n, script, args_of, env)
  local dir = portable.tmpdir()
  local setup = ("package.path='lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;'..package.path "
    .. "package.cpath=%q..';'..package.cpath"):format(CPATH)
  local pipes = {}
  for i = 1, n do
    local args = {}
    for j, a in ipairs(args_of(i, dir)) do args[j] = ("%q"):format(tostring(a)) end
    pipes[i] = assert(io.popen(("%s %s -e %q %s %s"):format(env or "", LUA, setup, script, table.concat(args, " "))))
  end
  for i = 1, n do wait_for(("%s/ready.%d"):format(dir, i), "worker " .. i .. " never got ready") end
  assert(io.open(dir .. "/go", "w")):close()
  local results = {}
  for i = 1, n do
    local out = pipes[i]:read "*a"
    pipes[i]:close()
    local ok, r = pcall(core.json_decode, out)
    assert(ok and type(r) == "table", "worker " .. i .. " said: " .. out)
    results[i] = r
  end
  return results, dir
end

return M
