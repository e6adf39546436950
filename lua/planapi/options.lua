-- options.lua: the one check of an options table (a client's, a call's, a
-- pager's): a typo such as `timout` or a value of the wrong type is a config
-- error naming the valid options, never a silently ignored setting.
--   options.check("planado", opts, 3, OWN, SHARED)   -- OWN, SHARED: name -> "type|type|false"
local config_error = require("planapi.config_error")

local M = {}

--- Whether v has one of the types spec names ("table|false", "string").
function M.type_ok(v, spec)
  for t in spec:gmatch "[^|]+" do
    if type(v) == t or (t == "false" and v == false) then return true end
  end
  return false
end

local function valid_names(...)
  local names, seen = {}, {}
  for i = 1, select("#", ...) do
    for name in pairs((select(i, ...))) do
      if not seen[name] then names[#names + 1], seen[name] = name, true end
    end
  end
  table.sort(names)
  return table.concat(names, ", ")
end

--- options.check(what, opts, level, types...): each key of opts must be in
-- one of the types tables (the first that has it decides its type). what
-- names the options in the message ("planado", "call", "rest:pager");
-- level as config_error's.
function M.check(what, opts, level, ...)
  for k, v in pairs(opts) do
    local spec
    for i = 1, select("#", ...) do
      spec = spec or (select(i, ...))[k]
    end
    if spec == nil then
      config_error(("unknown %s option '%s' (valid: %s)"):format(what, tostring(k), valid_names(...)), level)
    end
    if not M.type_ok(v, spec) then
      config_error(("%s option '%s' must be %s, got %s"):format(what, k, spec:gsub("|", " or "), type(v)), level)
    end
  end
end

return M
