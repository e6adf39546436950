-- pretty_json.lua: JSON for people to read and diff: two-space indents,
-- object keys in sorted order, so the same value is always the same text
-- (the command line's terminal output, cassette files).
local core = require "planapi.core"
local sorted_keys = require("planapi.client_base").sorted_keys

local function pretty(v, indent, out)
  if type(v) ~= "table" then
    out[#out + 1] = core.json_encode(v)
    return
  end
  local pad = ("  "):rep(indent)
  if v[1] ~= nil or core.is_array(v) then
    if #v == 0 then out[#out + 1] = "[]" return end
    out[#out + 1] = "[\n"
    for i, x in ipairs(v) do
      out[#out + 1] = pad .. "  "
      pretty(x, indent + 1, out)
      out[#out + 1] = i < #v and ",\n" or "\n"
    end
    out[#out + 1] = pad .. "]"
    return
  end
  local keys = sorted_keys(v)
  if #keys == 0 then out[#out + 1] = "{}" return end
  out[#out + 1] = "{\n"
  for i, k in ipairs(keys) do
    out[#out + 1] = pad .. "  " .. core.json_encode(k) .. ": "
    pretty(v[k], indent + 1, out)
    out[#out + 1] = i < #keys and ",\n" or "\n"
  end
  out[#out + 1] = pad .. "}"
end

--- pretty_json(value) -> the text, ending in a newline.
-- pretty_json(value, depth) -> the text of a value nested depth levels
-- deep (its first line not indented, no newline at the end), for a writer
-- that assembles a document from pieces it encoded once.
return function(v, depth)
  local out = {}
  pretty(v, depth or 0, out)
  if depth then return table.concat(out) end
  return table.concat(out) .. "\n"
end
