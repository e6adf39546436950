-- Small helpers shared by all sandbox modules: request snapshot, responses,
-- number parsing, copying.
local json = require("sandbox.json")

local M = {}

local function read_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  -- Bodies larger than client_body_buffer_size are spooled to a file.
  local file = ngx.req.get_body_file()
  if not file then return "" end
  local fh = io.open(file, "rb")
  if not fh then return "" end
  body = fh:read("*a") or ""
  fh:close()
  return body
end

-- Snapshot of the current request. `prefix` (e.g. "/rest") is stripped to
-- form `path`; `full_path` keeps it. Both are nginx's decoded, normalised URI.
function M.request(prefix)
  local full_path = ngx.var.uri
  local path = full_path
  if prefix and full_path:sub(1, #prefix) == prefix then
    path = full_path:sub(#prefix + 1)
  end
  ngx.update_time()
  return {
    method = ngx.req.get_method(),
    uri = ngx.var.request_uri,
    full_path = full_path,
    path = path,
    query = ngx.req.get_uri_args(0),
    headers = ngx.req.get_headers(0),
    body = read_body(),
    time = ngx.now(),
    -- nginx's serial number of the TCP connection: equal numbers prove keep-alive.
    connection = tonumber(ngx.var.connection),
  }
end

-- Sends a complete response. body is a string (or nil for none).
function M.send(status, body, headers)
  ngx.status = status
  if headers then
    for k, v in pairs(headers) do ngx.header[k] = v end
  end
  body = body or ""
  ngx.header["Content-Length"] = #body
  if #body > 0 then ngx.print(body) end
end

M.JSON_TYPE = "application/json; charset=utf-8"

function M.send_json(status, value, headers)
  local h = { ["Content-Type"] = M.JSON_TYPE }
  if headers then
    for k, v in pairs(headers) do h[k] = v end
  end
  M.send(status, json.encode(value), h)
end

-- Integer from a JSON number or a numeric string; nil when not an integer.
function M.to_int(v)
  if type(v) == "number" then
    if v % 1 == 0 then return v end
    return nil
  end
  if type(v) == "string" and v:match("^%s*%-?%d+%s*$") then
    return tonumber(v)
  end
  return nil
end

-- Number from a JSON number or numeric string.
function M.to_number(v)
  if type(v) == "number" then return v end
  if type(v) == "string" then return tonumber(v) end
  return nil
end

function M.deepcopy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = M.deepcopy(x) end
  return setmetatable(out, getmetatable(v))
end

-- A copy of a record without its internal "_" keys (what the APIs show).
function M.public(rec)
  local out = {}
  for k, v in pairs(rec) do
    if type(k) ~= "string" or k:sub(1, 1) ~= "_" then out[k] = M.deepcopy(v) end
  end
  return out
end

-- The JSON object of a control request's body ({} when empty), or nil.
function M.json_object(req)
  if req.body:match("^%s*$") then return {} end
  local v = json.decode(req.body)
  if type(v) ~= "table" then return nil end
  return v
end

-- Shallow merge of src into dst (src wins); returns dst.
function M.merge(dst, src)
  for k, v in pairs(src or {}) do dst[k] = v end
  return dst
end

-- Splits "a, b,c" into {"a","b","c"} (empty items dropped).
function M.split_list(s)
  local out = {}
  if type(s) == "table" then
    for _, v in ipairs(s) do
      for _, x in ipairs(M.split_list(v)) do out[#out + 1] = x end
    end
    return out
  end
  if type(s) ~= "string" then return out end
  for item in s:gmatch("[^,]+") do
    item = item:match("^%s*(.-)%s*$")
    if item ~= "" then out[#out + 1] = item end
  end
  return out
end

-- The query value for name; repeated args give the last one.
function M.query_value(query, name)
  local v = query[name]
  if type(v) == "table" then v = v[#v] end
  return v
end

function M.is_true(v)
  return v == true or v == "true" or v == "1"
end

-- Sorted array of the integer keys of t.
function M.sorted_ids(t)
  local ids = {}
  for id in pairs(t) do ids[#ids + 1] = id end
  table.sort(ids)
  return ids
end

-- Planfix TimePoint for a unix time (UTC).
function M.timepoint(t)
  return {
    date = os.date("!%d-%m-%Y", t),
    time = os.date("!%H:%M", t),
    datetime = os.date("!%Y-%m-%dT%H:%MZ", t),
    dateTimeUtcSeconds = os.date("!%Y-%m-%dT%H:%M:%S+0000", t),
  }
end

return M
