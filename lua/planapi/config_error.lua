-- config_error.lua: the one way the Lua layer raises an argument mistake.
--   local config_error = require "planapi.config_error"
--   config_error("option 'x' must be a number", 2)
--   config_error("unknown resource 'x'", 3, { valid = names })   -- extra fields of the error
-- level counts as error()'s does: 1 (the default) the function calling
-- config_error, 2 its caller, and so on; 0 names no line. The raised value
-- is a planapi error of kind "config" whose `where` is "source:line" of the
-- user's line: the first caller outside planapi's own files. A table raised
-- by error() carries no position of its own, and the depth at which a
-- check runs varies (rest:call and rest:prepare both look an operation up).
local core = require "planapi.core"

-- "@.../planapi/": the folder this file, and so every planapi module, is in.
local OWN = debug.getinfo(1, "S").source:match "^(@.*[/\\])[^/\\]*$"

local function user_line()
  local level = 3 -- 1: user_line, 2: config_error, 3: the function that called it
  while true do
    local info = debug.getinfo(level, "Sl")
    if info == nil then return nil end
    local own = OWN and info.source:sub(1, #OWN) == OWN
    if not own and info.currentline and info.currentline > 0 then
      return ("%s:%d"):format(info.short_src, info.currentline)
    end
    level = level + 1
  end
end

return function(msg, level, fields)
  level = level or 1
  local err = core.error { kind = "config", message = msg }
  for k, v in pairs(fields or {}) do err[k] = v end
  err.where = user_line()
  -- +1: this function's own frame
  error(err, level > 0 and level + 1 or 0)
end
