-- XML helpers for the Planfix XML API emulation: a safe parser (lua-expat)
-- into a small tree, a serializer for answers, the request -> simple table
-- conversion used by the log, and the request signature of Planfix's XML API documentation.
--
-- Tree node: { name = "task", attrs = { {name, value}, ... } (document order),
--              children = { node, ... }, text = "all character data",
--              sig_text = "character data outside CDATA sections" }
local json = require("sandbox.json")

-- lua-expat is loaded softly: without it the REST side still works and the
-- XML endpoint answers 500 saying what is missing (see M.available).
local has_lxp, lxp = pcall(require, "lxp")

local M = {}

M.available = has_lxp
M.MISSING = "lua-expat (lxp) is not installed: run tools/ensure-deps (Debian package lua-expat)"

---------------------------------------------------------------- parsing

-- Parses an XML document. Returns the root node, or nil, reason. A document
-- type declaration (and so any DTD or entity declaration) is refused: nothing
-- is ever loaded or expanded beyond the five predefined entities.
function M.parse(text)
  if not has_lxp then return nil, M.MISSING end
  if type(text) ~= "string" or text:match("^%s*$") then return nil, "empty body" end
  local root, stack, doctype = nil, {}, false
  local in_cdata = false
  local parser
  local callbacks = {
    StartElement = function(_, name, attrs)
      local node = { name = name, attrs = {}, children = {}, text = {}, sig_text = {} }
      for i = 1, #attrs do
        local a = attrs[i]
        node.attrs[i] = { a, attrs[a] }
      end
      local parent = stack[#stack]
      if parent then
        parent.children[#parent.children + 1] = node
      else
        root = node
      end
      stack[#stack + 1] = node
    end,
    EndElement = function()
      local node = stack[#stack]
      stack[#stack] = nil
      node.text = table.concat(node.text)
      node.sig_text = table.concat(node.sig_text)
    end,
    CharacterData = function(_, s)
      local node = stack[#stack]
      if not node then return end
      node.text[#node.text + 1] = s
      if not in_cdata then node.sig_text[#node.sig_text + 1] = s end
    end,
    StartCdataSection = function() in_cdata = true end,
    EndCdataSection = function() in_cdata = false end,
    StartDoctypeDecl = function(p)
      doctype = true
      p:stop()
    end,
  }
  parser = lxp.new(callbacks)
  local ok, err = parser:parse(text)
  if ok then ok, err = parser:parse() end
  pcall(parser.close, parser) -- raises after stop()
  if doctype then return nil, "DOCTYPE is not allowed" end
  if not ok then return nil, tostring(err) end
  if not root then return nil, "no root element" end
  return root
end

-- The value of attribute `name` of node, or nil.
function M.attr(node, name)
  for _, a in ipairs(node.attrs) do
    if a[1] == name then return a[2] end
  end
  return nil
end

-- First child element called `name`, or nil.
function M.child(node, name)
  if not node then return nil end
  for _, c in ipairs(node.children) do
    if c.name == name then return c end
  end
  return nil
end

-- Follows a dotted path ("task.workers.users") from node; nil when missing.
function M.find(node, path)
  for part in path:gmatch("[^.]+") do
    node = M.child(node, part)
    if not node then return nil end
  end
  return node
end

-- Text of the element at the dotted path (trimmed), or nil when the element
-- is missing. An element with children has no text.
function M.text(node, path)
  local n = path and M.find(node, path) or node
  if not n then return nil end
  if #n.children > 0 then return "" end
  return (n.text:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Text of the element as sent, spaces and line breaks kept (free text such
-- as a description, which must round-trip exactly), or nil when missing.
function M.raw_text(node, path)
  local n = path and M.find(node, path) or node
  if not n then return nil end
  if #n.children > 0 then return "" end
  return n.text
end

-- Texts of all children called `name` of the element at path (for id lists).
function M.texts(node, path, name)
  local n = M.find(node, path)
  local out = {}
  if not n then return out end
  for _, c in ipairs(n.children) do
    if c.name == name then out[#out + 1] = M.text(c) end
  end
  return out
end

-- The request as a simple table for the log: element name -> text, or a
-- nested table for elements with children; repeated names become arrays.
-- Attributes appear as "@name" keys (a leaf with attributes becomes a table,
-- its text under "#text").
function M.simple(node)
  if #node.children == 0 and #node.attrs == 0 then return node.text end
  local out = {}
  for _, a in ipairs(node.attrs) do out["@" .. a[1]] = a[2] end
  if #node.children == 0 then
    if node.text ~= "" then out["#text"] = node.text end
    return out
  end
  local counts = {}
  for _, c in ipairs(node.children) do counts[c.name] = (counts[c.name] or 0) + 1 end
  for _, c in ipairs(node.children) do
    local v = M.simple(c)
    if counts[c.name] > 1 then
      out[c.name] = out[c.name] or json.array()
      local arr = out[c.name]
      arr[#arr + 1] = v
    else
      out[c.name] = v
    end
  end
  return out
end

---------------------------------------------------------------- signature (Planfix's XML API documentation)

-- Byte-order comparison (strcmp), independent of any locale.
local function byte_less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = a:byte(i), b:byte(i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- Children sorted by tag name in byte order; stable (document order among
-- equal names): the index breaks ties.
local function sorted_children(node, skip)
  local list = {}
  for i, c in ipairs(node.children) do
    if not (skip and skip(c)) then list[#list + 1] = { c, i } end
  end
  table.sort(list, function(a, b)
    if a[1].name ~= b[1].name then return byte_less(a[1].name, b[1].name) end
    return a[2] < b[2]
  end)
  return list
end

local function flatten(node, out)
  if #node.children > 0 then
    -- Attribute values (document order), then the sorted children.
    for _, a in ipairs(node.attrs) do out[#out + 1] = a[2] end
    for _, e in ipairs(sorted_children(node)) do flatten(e[1], out) end
  elseif node.sig_text:find("%S") then
    -- A leaf with text: the text as-is; its attributes are ignored.
    out[#out + 1] = node.sig_text
  else
    -- An empty leaf: its attribute values, if any.
    for _, a in ipairs(node.attrs) do out[#out + 1] = a[2] end
  end
end

-- The string to hash for a parsed <request> and a private key: the method
-- attribute, the root's children but <signature> (sorted, flattened), the key.
function M.signature_string(root, key)
  local out = { M.attr(root, "method") or "" }
  for _, e in ipairs(sorted_children(root, function(c) return c.name == "signature" end)) do
    flatten(e[1], out)
  end
  out[#out + 1] = key or ""
  return table.concat(out)
end

function M.signature(root, key)
  local s = M.signature_string(root, key)
  return ngx.md5(s), s
end

---------------------------------------------------------------- serializing

-- A CR is written as a reference: a literal one would reach the client as
-- LF (XML's line-end normalisation), and a stored "\r\n" must come back whole.
local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["\r"] = "&#13;" }

function M.escape(s)
  return (tostring(s):gsub('[&<>"\r]', ESC))
end

-- Attribute string from an ordered list { {name, value}, ... }.
local function attr_string(attrs)
  if not attrs then return "" end
  local out = {}
  for _, a in ipairs(attrs) do
    out[#out + 1] = " " .. a[1] .. '="' .. M.escape(a[2]) .. '"'
  end
  return table.concat(out)
end

-- <name>text</name> (text escaped; nil and false give an empty element).
function M.leaf(name, value, attrs)
  if value == nil or value == false or value == json.null or type(value) == "table" then value = "" end
  if value == true then value = "1" end
  return "<" .. name .. attr_string(attrs) .. ">" .. M.escape(value) .. "</" .. name .. ">"
end

-- <name attrs>children...</name>, or <name attrs/> without children.
-- children: an array of strings (already serialized elements).
function M.el(name, children, attrs)
  local inner = children and table.concat(children) or ""
  if inner == "" then return "<" .. name .. attr_string(attrs) .. "/>" end
  return "<" .. name .. attr_string(attrs) .. ">" .. inner .. "</" .. name .. ">"
end

M.DECL = '<?xml version="1.0" encoding="UTF-8"?>'
M.CONTENT_TYPE = "application/xml; charset=utf-8"

-- A complete <response status="ok"> document around serialized children.
function M.ok_document(children)
  local inner = type(children) == "table" and table.concat(children) or (children or "")
  if inner == "" then return M.DECL .. '<response status="ok"/>' end
  return M.DECL .. '<response status="ok">' .. inner .. "</response>"
end

-- A complete error document. code is a string such as "0005" (nil: no
-- <code> element, for answers whose real code is not known).
function M.error_document(code, message)
  local parts = {}
  if code then parts[#parts + 1] = M.leaf("code", code) end
  if message then parts[#parts + 1] = M.leaf("message", message) end
  return M.DECL .. '<response status="error">' .. table.concat(parts) .. "</response>"
end

-- English meanings of the Planfix XML error codes (as the XML API documentation lists them), sent
-- in the undocumented but observed <message> element.
M.MESSAGES = {
  ["0001"] = "Incorrect API key", ["0002"] = "Application is blocked", ["0003"] = "XML parse error",
  ["0004"] = "Unknown account", ["0005"] = "Session key invalid (session expired)",
  ["0006"] = "Incorrect signature", ["0007"] = "Resource usage limit exceeded",
  ["0008"] = "Unknown function name", ["0009"] = "A required parameter is missing",
  ["0010"] = "Account is frozen", ["0011"] = "Software update in progress",
  ["0012"] = "Authentication error", ["0013"] = "Undefined user", ["0014"] = "User is inactive",
  ["0015"] = "Invalid parameter value", ["0016"] = "Parameter cannot take this value in this context",
  ["0017"] = "Value missing for a dependent parameter", ["0018"] = "Function not implemented",
  ["0019"] = "Conflicting parameters", ["0020"] = "Calling this function is forbidden",
  ["0021"] = "Requested number of objects exceeds the maximum for this function",
  ["0022"] = "API not available for free accounts", ["0023"] = "Action not possible on the current plan",
  ["0024"] = "Account is in another data centre", ["0101"] = "Requested object does not exist",
  ["0102"] = "Error adding the object", ["0103"] = "Error updating the object",
  ["0104"] = "Access to data denied", ["0105"] = "No right to edit the object",
  ["1001"] = "Wrong login or password", ["1002"] = "No rights to execute this request",
  ["2001"] = "Project does not exist", ["2002"] = "No rights to the project", ["2003"] = "Error adding project",
  ["3001"] = "Task does not exist", ["3002"] = "No access to parent task",
  ["3003"] = "Project for the new task does not exist", ["3004"] = "Project is not accessible",
  ["3005"] = "Error adding task", ["3008"] = "No access to task", ["3009"] = "No right to change the task",
  ["3014"] = "Task is being modified", ["4001"] = "No rights to the action", ["4002"] = "Action does not exist",
  ["4003"] = "Error adding action", ["4006"] = "Forbidden status", ["4009"] = "No access to task",
  ["6004"] = "User does not exist", ["8002"] = "Contact does not exist", ["8003"] = "Error adding contact",
  ["8004"] = "Error updating contact", ["9001"] = "No rights to the file", ["9002"] = "File does not exist",
  ["9007"] = "File-system error", ["10002"] = "Analitic does not exist",
  ["10004"] = "Handbook parameter does not exist",
}

function M.message(code)
  return code and M.MESSAGES[code] or nil
end

-- Error code text: numbers are zero-padded to 4 digits ("5" -> "0005").
function M.code_text(code)
  local n = tonumber(code)
  if not n then return tostring(code) end
  return string.format("%04d", n)
end

return M
