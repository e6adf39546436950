-- multipart/form-data parsing (RFC 7578) for file uploads.
local M = {}

-- Boundary from a Content-Type value, or nil when not multipart/form-data.
function M.boundary(content_type)
  if type(content_type) == "table" then content_type = content_type[1] end
  if type(content_type) ~= "string" then return nil end
  if not content_type:lower():match("^%s*multipart/form%-data") then return nil end
  local b = content_type:match('[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]%s*=%s*"([^"]+)"')
    or content_type:match("[Bb][Oo][Uu][Nn][Dd][Aa][Rr][Yy]%s*=%s*([^;%s]+)")
  return b
end

local function parse_headers(block)
  local h = {}
  for line in (block .. "\r\n"):gmatch("(.-)\r\n") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then h[k:lower()] = v end
  end
  return h
end

-- Parameters of a Content-Disposition value: name, filename (filename*
-- with UTF-8'' encoding wins, as browsers and curl may send both).
local function disposition(value)
  local d = {}
  if not value then return d end
  d.name = value:match(';%s*name="([^"]*)"') or value:match(";%s*name=([^;%s]+)")
  d.filename = value:match(';%s*filename="([^"]*)"') or value:match(";%s*filename=([^;%s]+)")
  local ext = value:match(";%s*filename%*=[Uu][Tt][Ff]%-8''([^;%s]+)")
  if ext then d.filename = ngx.unescape_uri(ext) end
  return d
end

-- Parses body into a list of parts {name, filename, content_type, data}.
-- Returns nil, err when the body is not well-formed.
function M.parse(body, boundary)
  local delim = "--" .. boundary
  local parts = {}
  local pos = body:find(delim, 1, true)
  if not pos then return nil, "boundary not found" end
  pos = pos + #delim
  while true do
    -- After a delimiter: "--" ends the body, otherwise CRLF then a part.
    if body:sub(pos, pos + 1) == "--" then break end
    local line_end = body:find("\r\n", pos, true)
    if not line_end then return nil, "unterminated delimiter line" end
    local head_start = line_end + 2
    local head_end = body:find("\r\n\r\n", head_start, true)
    local headers
    local data_start
    if body:sub(head_start, head_start + 1) == "\r\n" then
      headers, data_start = {}, head_start + 2 -- part without headers
    elseif head_end then
      headers = parse_headers(body:sub(head_start, head_end - 1))
      data_start = head_end + 4
    else
      return nil, "part headers not terminated"
    end
    local next_delim = body:find("\r\n" .. delim, data_start, true)
    if not next_delim then return nil, "closing boundary missing" end
    local d = disposition(headers["content-disposition"])
    parts[#parts + 1] = {
      name = d.name, filename = d.filename,
      content_type = headers["content-type"],
      data = body:sub(data_start, next_delim - 1),
    }
    pos = next_delim + 2 + #delim
  end
  return parts
end

return M
