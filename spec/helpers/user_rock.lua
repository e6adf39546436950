-- A user's install of planapi, for spec/28 and spec/29: the rock made by
-- `luarocks make --tree` (tools/rock-tree: one install per change of the
-- sources, shared by every run of make test), and commands run the way a
-- user runs them: a clean environment whose paths are the ones
-- `luarocks path` prints for that tree, from a folder outside the checkout.
local portable = require "portable"

local M = {}

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
M.shell_quote = shell_quote

local tree
--- The installed tree (installed on the first call of this process).
function M.tree()
  if tree then return tree end
  local out, code = portable.run "tools/rock-tree"
  assert(code == 0, "luarocks make failed:\n" .. out)
  tree = out:match "([^\n]+)\n?$"
  return tree
end

--- The user's environment: `env -i` with HOME, the PATH, LUA_PATH and
-- LUA_CPATH of `luarocks --tree <tree> path`, and `extra` (name = value).
local paths
local function luarocks_paths()
  if paths then return paths end
  local out, code = portable.run(("luarocks --lua-version=5.4 --tree=%s path"):format(shell_quote(M.tree())))
  assert(code == 0, out)
  paths = {}
  for name, value in out:gmatch "export ([%w_]+)='([^']*)'" do paths[name] = value end
  assert(paths.LUA_PATH and paths.LUA_CPATH and paths.PATH, "luarocks path printed no paths:\n" .. out)
  return paths
end

function M.env(home, extra)
  local vars = { HOME = home }
  for k, v in pairs(luarocks_paths()) do vars[k] = v end
  for k, v in pairs(extra or {}) do vars[k] = v end
  local parts = {}
  for k, v in pairs(vars) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
  table.sort(parts)
  return "env -i " .. table.concat(parts, " ")
end

--- Run `cmd` in the user's environment `env` (from M.env) inside `dir`:
-- stdout, stderr, exit code. stdout goes through a file of the user's
-- folder, not the journal: `planapi sandbox start` prints the sandbox's
-- own fixed test credentials on purpose (for eval), and the journal's
-- secret scan would rightly flag those strings anywhere else (M.exports
-- notes them as secrets). stderr is journaled as every child's output is.
function M.run(env, dir, cmd)
  local out_file = dir .. "/stdout.txt"
  local err, code = portable.run(("cd %s && %s sh -c %s 2>&1 >%s"):format(shell_quote(dir), env,
    shell_quote(cmd), shell_quote(out_file)))
  local out = portable.read_file(out_file) or ""
  os.remove(out_file)
  return out, err, code
end

-- The credentials among the exports: what the children get to authenticate.
local CREDENTIALS = { "PLANFIX_TOKEN", "PLANFIX_API_KEY", "PLANFIX_XML_TOKEN", "PLANFIX_PRIVATE_KEY",
  "PLANADO_API_KEY" }

--- The variables of `export NAME='value'` lines. The credentials among
-- them are noted in the journal as secrets handed to child processes: the
-- secret scan then looks for them in everything else the children printed.
function M.exports(text)
  local vars = {}
  for name, value in text:gmatch "export ([%w_]+)='?([^'\n]*)'?\n" do vars[name] = value end
  local journal = require "journal"
  for _, name in ipairs(CREDENTIALS) do journal.secret(vars[name]) end
  return vars
end

return M
