-- suggest.lua: "did you mean ...?" for unknown operation and method names.

local M = {}

-- Edit distance: a typo is a few edits away.
local function distance(a, b)
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    cur[0] = i
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

--- Up to `n` (5) names of the set `names` (name -> anything) closest to `wrong`,
-- only those at most `max_distance` edits away when it is given.
function M.nearest(wrong, names, n, max_distance)
  local w = tostring(wrong):lower()
  local scored = {}
  for name in pairs(names) do
    local d = distance(w, name:lower())
    if max_distance == nil or d <= max_distance then scored[#scored + 1] = { name = name, d = d } end
  end
  table.sort(scored, function(x, y)
    if x.d ~= y.d then return x.d < y.d end
    return x.name < y.name
  end)
  local out = {}
  for i = 1, math.min(n or 5, #scored) do out[i] = scored[i].name end
  return out
end

return M
