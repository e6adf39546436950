-- cli/output.lua: results for people (pretty JSON on a terminal, a table)
-- and for programs (compact JSON, JSON Lines in a pipe).
local core = require "planapi.core"
local sorted_keys = require("planapi.client_base").sorted_keys
local pretty_json = require "planapi.pretty_json"

local M = {}

-- JSON-able shape of a decoded response: XML list containers are arrays
-- that also carry "@count"/"@totalCount"; they become { "@count": ..., "items": [...] }.
-- Decoded arrays are marked (planapi.is_array), so an empty one stays [].
local function plain(v)
  if type(v) ~= "table" then return v end
  local n, has_str = #v, false
  local is_array = n > 0 or core.is_array(v)
  for k in pairs(v) do
    if type(k) == "string" then has_str = true break end
  end
  local out = {}
  if is_array and not has_str then
    for i = 1, n do out[i] = plain(v[i]) end
    return core.array(out)
  end
  for k, x in pairs(v) do
    if type(k) == "string" then out[k] = plain(x) end
  end
  if is_array then
    local items = {}
    for i = 1, n do items[i] = plain(v[i]) end
    out.items = core.array(items)
  end
  return out
end
M.plain = plain

--- One value: pretty on a terminal, one compact line otherwise.
function M.value(v, tty)
  v = plain(v)
  if tty then return pretty_json(v) end
  return core.json_encode(v) .. "\n"
end

--- One JSON Lines record.
function M.line(v)
  return core.json_encode(plain(v)) .. "\n"
end

local function cell(v)
  if v == nil or v == core.null then return "" end
  if type(v) == "table" then
    if v.name or v.id or v.uuid then return tostring(v.name or v.id or v.uuid) end
    return core.json_encode(plain(v))
  end
  return tostring(v):gsub("[\r\n\t]", " ")
end

--- Rows as an aligned text table with the given columns (default: the
-- first row's keys, at most six).
function M.table(rows, columns)
  if not columns then
    columns = {}
    for _, k in ipairs(sorted_keys(rows[1] or {})) do
      if type(k) == "string" and k:sub(1, 1) ~= "@" and #columns < 6 then columns[#columns + 1] = k end
    end
  end
  local widths, cells = {}, {}
  for c, name in ipairs(columns) do widths[c] = #name end
  for r, row in ipairs(rows) do
    cells[r] = {}
    for c, name in ipairs(columns) do
      local text = cell(row[name])
      if utf8 and utf8.len(text) and utf8.len(text) > 40 then
        text = text:sub(1, utf8.offset(text, 38) - 1) .. "..."
      end
      cells[r][c] = text
      local len = utf8 and utf8.len(text) or #text
      if len > widths[c] then widths[c] = len end
    end
  end
  local function line(values)
    local parts = {}
    for c, v in ipairs(values) do
      local len = utf8 and utf8.len(v) or #v
      parts[c] = v .. (" "):rep(widths[c] - len)
    end
    return (table.concat(parts, "  "):gsub("%s+$", "")) .. "\n"
  end
  local out = { line(columns) }
  local rule = {}
  for c in ipairs(columns) do rule[c] = ("-"):rep(widths[c]) end
  out[#out + 1] = line(rule)
  for _, r in ipairs(cells) do out[#out + 1] = line(r) end
  return table.concat(out)
end

return M
