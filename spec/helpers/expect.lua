-- expect.lua: assertions the specs share.
local core = require "planapi.core"
local assert = require "luassert"

local M = {}

--- fn() must raise a planapi "config" error (an argument mistake), whose
-- message matches pattern if given. Returns the error.
function M.raises_config(fn, pattern)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an argument error")
  assert.is_true(core.is_error(err), "expected a planapi error, got " .. tostring(err))
  assert.equal("config", err.kind)
  if pattern then assert.matches(pattern, err.message) end
  return err
end

--- fn(a, b, c, d) must raise a config error whose text is one line. Returns the error.
function M.config_error_of(fn, a, b, c, d)
  local err = M.raises_config(function() return fn(a, b, c, d) end)
  assert.is_nil(tostring(err):find("\n", 1, true), "the error's text is not one line")
  return err
end

return M
