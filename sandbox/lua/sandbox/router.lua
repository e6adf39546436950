-- A tiny exact-path router shared by the emulated APIs.
--
-- Patterns are literal paths with "{name}" segments ("/task/{id}/comments/").
-- Matching is exact, trailing slash included, because the real APIs are
-- picky about it ("POST /task/" creates, "POST /task" does not exist) and
-- the sandbox should catch clients that get it wrong. Routes are tried in
-- the order added, so literal routes must be added before "{id}" ones that
-- would shadow them (e.g. "/task/list" before "/task/{id}").
local M = {}
M.__index = M

function M.new()
  return setmetatable({ routes = {} }, M)
end

local function compile(pattern)
  local names = {}
  local lp = pattern:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
  lp = lp:gsub("{(%w+)}", function(name)
    names[#names + 1] = name
    return "([^/]+)"
  end)
  return "^" .. lp .. "$", names
end

-- opts: any extra fields kept on the route (e.g. body = "json").
function M:add(method, pattern, handler, opts)
  local lp, names = compile(pattern)
  local route = opts or {}
  route.method, route.pattern, route.handler = method, pattern, handler
  route.lua_pattern, route.names = lp, names
  self.routes[#self.routes + 1] = route
  return route
end

-- Returns route, params (name -> string) or nil.
function M:match(method, path)
  for _, r in ipairs(self.routes) do
    if r.method == method then
      local caps = { path:match(r.lua_pattern) }
      if caps[1] ~= nil or (#r.names == 0 and path == r.pattern) then
        local params = {}
        for i, name in ipairs(r.names) do params[name] = caps[i] end
        return r, params
      end
    end
  end
  return nil
end

return M
