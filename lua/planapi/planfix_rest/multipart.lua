-- planfix_rest/multipart.lua: a multipart/form-data body for file uploads (pure).
local core = require "planapi.core"

local M = {}

local config_error = require "planapi.config_error"

-- A boundary that cannot occur in the data: random, then checked.
local function boundary_for(parts)
  while true do
    local b = ("planapi-%08x%08x%08x"):format(math.random(0, 0x7fffffff), math.random(0, 0x7fffffff),
      math.random(0, 0x7fffffff))
    local clash = false
    for _, p in ipairs(parts) do
      if p.data:find(b, 1, true) then clash = true end
    end
    if not clash then return b end
  end
end

local function quoted(s)
  if s:find('[\r\n"%z]') then config_error("names in a form part must not contain quotes, line breaks or NUL", 3) end
  return '"' .. s .. '"'
end

--- multipart.file_part(field, spec) -> part
-- spec = { path = "/tmp/a.pdf" } or { data = "bytes", name = "a.pdf" },
-- optional name (defaults to the path's base name) and content_type.
function M.file_part(field, spec)
  if type(spec) == "string" then spec = { path = spec } end
  if type(spec) ~= "table" then config_error("file must be a path or { path = } / { data =, name = }", 3) end
  local data, name = spec.data, spec.name
  if spec.path ~= nil then
    if data ~= nil then config_error("give a file's path or its data, not both", 3) end
    local f, err = io.open(spec.path, "rb")
    if not f then config_error("cannot read file to upload: " .. tostring(err), 3) end
    data = f:read "a"
    f:close()
    name = name or spec.path:match "[^/\\]+$"
  end
  if type(data) ~= "string" then config_error("file data must be a string", 3) end
  if type(name) ~= "string" or name == "" then config_error("file name is required with data", 3) end
  local ctype = spec.content_type or "application/octet-stream"
  if type(ctype) ~= "string" or ctype:find "[\r\n%z]" then
    config_error("file content_type must be a string without line breaks", 3)
  end
  return { field = field, name = name, data = data, content_type = ctype }
end

--- multipart.field_part(field, value) -> part: a plain form field.
function M.field_part(field, value)
  if type(value) ~= "string" and type(value) ~= "number" and type(value) ~= "boolean" then
    config_error(("form field '%s' must be a string, number or boolean"):format(field), 3)
  end
  -- Numbers as the JSON encoder writes them, exactly: tostring gives "42.0"
  -- for a 5.4 float and only 14 digits under LuaJIT.
  return { field = field, data = type(value) == "number" and core.json_encode(value) or tostring(value) }
end

--- multipart.encode(parts) -> body, content_type
function M.encode(parts)
  local b = boundary_for(parts)
  local out = {}
  for _, p in ipairs(parts) do
    out[#out + 1] = "--" .. b .. "\r\n"
    if p.name then
      out[#out + 1] = ("Content-Disposition: form-data; name=%s; filename=%s\r\n"):format(quoted(p.field),
        quoted(p.name))
      out[#out + 1] = "Content-Type: " .. p.content_type .. "\r\n\r\n"
    else
      out[#out + 1] = ("Content-Disposition: form-data; name=%s\r\n\r\n"):format(quoted(p.field))
    end
    out[#out + 1] = p.data
    out[#out + 1] = "\r\n"
  end
  out[#out + 1] = "--" .. b .. "--\r\n"
  return table.concat(out), "multipart/form-data; boundary=" .. b
end

return M
