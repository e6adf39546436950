-- What specs need to behave the same under Lua 5.4 and LuaJIT 2.1 (Lua 5.1
-- semantics): the exit status of a shell command, and the type of a number;
-- and the file and directory helpers every spec would otherwise write again.
--   local portable = require "portable"
local M = {}

--- os.execute with Lua 5.4's results under both: true|nil, "exit"|"signal", code.
-- LuaJIT (built without LUAJIT_ENABLE_LUA52COMPAT, as Debian's is) returns
-- the raw wait status instead, 0 on success, which is truthy either way.
function M.execute(cmd)
  local a, how, code = os.execute(cmd)
  if type(a) ~= "number" then return a or nil, how, code end
  if a % 256 == 0 then
    local status = math.floor(a / 256)
    return status == 0 or nil, "exit", status
  end
  return nil, "signal", a % 128
end

--- Run a shell command: its output (stdout and stderr) and its exit code.
-- LuaJIT's popen file:close() gives no exit status, so the output goes
-- through a temporary file and the status comes from os.execute.
function M.run(cmd)
  local tmp = os.tmpname()
  local _, how, code = M.execute("( " .. cmd .. "\n) > " .. tmp .. " 2>&1")
  local f = io.open(tmp, "rb")
  local out = f and f:read "*a" or ""
  if f then f:close() end
  os.remove(tmp)
  if how == "signal" then code = 128 + code end
  return out, code
end

--- io.popen(cmd) for reading, whose close() gives Lua 5.4's results under
-- LuaJIT too: true|nil, "exit", code (LuaJIT's gives true, whatever the
-- exit status). The output is the command's own, untouched; the status
-- goes through a temporary file. read and lines are the pipe's.
function M.popen(cmd)
  local status_file = os.tmpname()
  local p, err = io.popen("( " .. cmd .. "\n); echo $? > " .. status_file)
  if not p then
    os.remove(status_file)
    return nil, err
  end
  local f = {}
  function f.read(_, ...) return p:read(...) end
  function f.lines(_, ...) return p:lines(...) end
  function f.close()
    p:close() -- waits for the shell, which wrote the status last
    local sf = io.open(status_file, "rb")
    local code = sf and tonumber(sf:read "*a")
    if sf then sf:close() end
    os.remove(status_file)
    if code == nil then return nil, "exit", -1 end
    return code == 0 or nil, "exit", code
  end
  return f
end

--- A TCP port on 127.0.0.1 that nothing listens on now (the system's
-- choice for port 0), for a server a spec starts. Needs luasocket.
function M.free_port()
  local s = assert(require("socket").bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

--- math.type where it exists (5.3+). Lua 5.1 and LuaJIT have no integer
-- subtype: there an integral number counts as "integer" (it prints as 42).
function M.number_type(v)
  if math.type then return math.type(v) end
  if type(v) ~= "number" then return nil end
  return (v == math.floor(v) and v > -math.huge and v < math.huge) and "integer" or "float"
end

M.luajit = type(rawget(_G, "jit")) == "table"

--- The interpreter running this spec, by the command name a child process
-- starts it with (from PATH: make sanitize puts its wrappers first there),
-- and the package.cpath entry of its build of the module (make, make
-- LUA=luajit, make LUA=lua5.3).
M.lua, M.cpath = "lua5.4", "./?.so"
if M.luajit then
  M.lua, M.cpath = "luajit", "build/luajit/?.so"
elseif _VERSION == "Lua 5.3" then
  M.lua, M.cpath = "lua5.3", "build/lua5.3/?.so"
end

--- Can this host give a program a pseudo-terminal? (script(1) from
-- util-linux, and a mounted /dev/pts: some containers and chroots lack it.)
function M.has_pty()
  return M.execute "script -qec true /dev/null < /dev/null > /dev/null 2>&1" == true
end

--- The whole content of a file, or nil when it cannot be read.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read "*a"
  f:close()
  return s
end

--- The non-empty lines of a text.
function M.lines(s)
  local out = {}
  for l in s:gmatch "[^\n]+" do out[#out + 1] = l end
  return out
end

--- Write text to a file, replacing it (raises on failure).
function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  f:close()
end

--- A new empty temporary directory.
function M.tmpdir()
  local core = require "planapi.core"
  local path = os.tmpname()
  os.remove(path)
  assert(core.mkdir(path))
  return path
end

--- Remove a directory and everything in it.
function M.rmtree(path)
  local core = require "planapi.core"
  for _, name in ipairs(core.list_dir(path) or {}) do
    local p = path .. "/" .. name
    if not os.remove(p) then M.rmtree(p) end
  end
  os.remove(path)
end

return M
