-- luacats.lua: a strict reader of LuaCATS annotation files (the Lua
-- language server's ---@ tags), for spec/26. No parser of the annotations
-- can be installed here (lua-language-server is in neither Debian 12 nor
-- npm), so this one checks a grammar of its own, stricter than the server's:
-- every ---@ line must be one of the tags below with a type that parses
-- whole, and every type name must be a built-in or a class or alias the
-- files declare. It also reads what the files declare (classes, their
-- fields and functions, aliases, overloads) for the coverage checks.
local M = {}

local BUILTIN = { ["nil"] = true, any = true, boolean = true, string = true, number = true, integer = true,
  ["function"] = true, table = true, thread = true, userdata = true, lightuserdata = true, ["true"] = true,
  ["false"] = true, ["file*"] = true, unknown = true }

-- ------------------------------------------------------------ types
-- A recursive descent over one type; s: the text, i: the position.
-- Returns the position after the type, or raises "msg at col".

local T = {}

local function skip(s, i) return s:match("^%s*()", i) end

local function fail(s, i, what) error(("%s at column %d of %q"):format(what, i, s), 0) end

local function expect(s, i, tok)
  i = skip(s, i)
  if s:sub(i, i + #tok - 1) ~= tok then fail(s, i, "expected '" .. tok .. "'") end
  return i + #tok
end

function T.name(s, i, names)
  local name, j = s:match("^([%a_][%w_%.]*%*?)()", i)
  if not name then return nil end
  if names then names[#names + 1] = name end
  return j
end

function T.fun(s, i, names)
  i = expect(s, i, "(")
  i = skip(s, i)
  if s:sub(i, i) ~= ")" then
    repeat
      i = skip(s, i)
      if s:sub(i, i + 2) == "..." then
        i = i + 3
      else
        i = T.name(s, i) or fail(s, i, "expected a parameter name")
        if s:sub(i, i) == "?" then i = i + 1 end
      end
      i = expect(s, i, ":")
      i = T.type(s, i, names)
      i = skip(s, i)
      local more = s:sub(i, i) == ","
      if more then i = i + 1 end
    until not more
  end
  i = expect(s, i, ")")
  local j = skip(s, i)
  if s:sub(j, j) == ":" then
    i = j + 1
    repeat
      i = T.type(s, i, names)
      local k = skip(s, i)
      local more = s:sub(k, k) == ","
      if more then i = k + 1 end
    until not more
  end
  return i
end

function T.record(s, i, names)
  i = expect(s, i, "{")
  repeat
    i = skip(s, i)
    if s:sub(i, i) == "[" then
      i = expect(s, T.type(s, i + 1, names), "]")
    else
      i = T.name(s, i) or fail(s, i, "expected a field name")
      if s:sub(i, i) == "?" then i = i + 1 end
    end
    i = T.type(s, expect(s, i, ":"), names)
    i = skip(s, i)
    local more = s:sub(i, i) == ","
    if more then i = i + 1 end
  until not more
  return expect(s, i, "}")
end

function T.primary(s, i, names)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == '"' then
    local j = s:match('^"[^"]*"()', i)
    return j or fail(s, i, "unterminated string")
  elseif c == "(" then
    return expect(s, T.type(s, i + 1, names), ")")
  elseif c == "{" then
    return T.record(s, i, names)
  elseif c:match "%d" then
    return s:match("^%d+()", i)
  elseif s:match("^fun%(", i) then
    return T.fun(s, i + 3, names)
  elseif s:match("^table<", i) then
    i = T.type(s, i + 6, names)
    i = T.type(s, expect(s, i, ","), names)
    return expect(s, i, ">")
  end
  return T.name(s, i, names) or fail(s, i, "expected a type")
end

--- type := postfix ('|' postfix)*, postfix := primary ('[]' | '?')*
function T.type(s, i, names)
  while true do
    i = T.primary(s, i, names)
    while s:sub(i, i + 1) == "[]" or s:sub(i, i) == "?" do i = i + (s:sub(i, i) == "?" and 1 or 2) end
    local j = skip(s, i)
    if s:sub(j, j) ~= "|" then return i end
    i = j + 1
  end
end

--- The type at the start of text: its end position (the rest must be empty
-- or start with a blank) and the names it uses.
function M.parse_type(text)
  local names = {}
  local i = T.type(text, 1, names)
  if i <= #text and not text:sub(i, i):match "%s" then fail(text, i, "unexpected text after the type") end
  return i, names
end

-- ------------------------------------------------------------ lines

local function new_model()
  return { classes = {}, aliases = {}, used = {}, vars = {}, errors = {} }
end

local function use(model, names, where)
  for _, n in ipairs(names) do model.used[#model.used + 1] = { name = n, where = where } end
end

-- name?, then a type, then a description.
local function named_type(model, rest, where)
  local name, q, after = rest:match "^([%a_][%w_]*)(%??)%s+(.*)$"
  if not name then error("expected a name and a type", 0) end
  local _, names = M.parse_type(after)
  use(model, names, where)
  return name, q == "?"
end

local TAGS = {}

function TAGS.meta(_, rest)
  if rest ~= "" and not rest:match "^[%w_.]+$" then error("bad @meta name", 0) end
end

function TAGS.class(model, rest, where, state)
  local name, parents = rest:match "^([%a_][%w_.]*)%s*:?%s*(.-)$"
  if not name then error("bad @class", 0) end
  if model.classes[name] then error("class declared twice: " .. name, 0) end
  local cls = { name = name, fields = {}, funcs = {}, parents = {} }
  for p in parents:gmatch "[^,%s]+" do
    cls.parents[#cls.parents + 1] = p
    use(model, { p }, where)
  end
  model.classes[name] = cls
  state.class = cls
end

function TAGS.field(model, rest, where, state)
  if not state.class then error("@field outside a class", 0) end
  local name, optional = named_type(model, rest, where)
  state.class.fields[name] = { optional = optional, line = rest }
end

function TAGS.param(model, rest, where, state)
  local name = named_type(model, rest, where)
  state.params[#state.params + 1] = name
end

function TAGS.overload(model, rest, where, state)
  if not rest:match "^fun%(" then error("@overload needs a fun() type", 0) end
  local _, names = M.parse_type(rest)
  use(model, names, where)
  state.overloads[#state.overloads + 1] = rest
end

-- ---@type T before the table a file returns: a class declared elsewhere.
function TAGS.type(model, rest, where, state)
  local _, names = M.parse_type(rest)
  use(model, names, where)
  state.class = { name = rest, fields = {}, funcs = {}, parents = {} }
end

TAGS["return"] = function(model, rest, where)
  local i, names = M.parse_type(rest)
  local tail = rest:sub(i):match "^%s*(.-)$"
  if tail ~= "" and not tail:match "^[%a_][%w_]*" and not tail:match "^#" then error("bad @return name", 0) end
  use(model, names, where)
end

function TAGS.alias(model, rest, where, state)
  local name, tail = rest:match "^([%a_][%w_.]*)%s*(.-)$"
  if not name then error("bad @alias", 0) end
  local alias = { name = name, values = {} }
  if tail ~= "" then
    local _, names = M.parse_type(tail)
    use(model, names, where)
  end
  model.aliases[name] = alias
  state.alias = alias
end

-- One line of a file, in state (the class, alias, params and overloads
-- being read).
local function read_line(model, line, where, state)
  local tag, rest = line:match "^%-%-%-@(%a+)%s*(.-)%s*$"
  if tag then
    local f = TAGS[tag] or error("unknown tag @" .. tag, 0)
    return f(model, rest, where, state)
  end
  local value = line:match "^%-%-%-|%s*(.-)%s*$"
  if value then
    if not state.alias then error("---| outside an @alias", 0) end
    M.parse_type(value)
    state.alias.values[#state.alias.values + 1] = value:match '^"(.*)"$' or value
    return
  end
  state.alias = nil
  if line:match "^%-%-%-" or line:match "^%-%- " or line == "" or line:match "^return [%a_][%w_]*$" then return end
  local var = line:match "^local ([%a_][%w_]*) = {}$"
  if var then
    if not state.class then error("a table without a class", 0) end
    model.vars[var], state.class = state.class, nil
    return
  end
  local owner, sep, name, args = line:match "^function ([%a_][%w_]*)([.:])([%a_][%w_]*)%((.-)%) end$"
  if not owner or not model.vars[owner] then error("not an annotation, a class table or a stub", 0) end
  local declared = table.concat(state.params, ", ")
  if args ~= declared then error(("the stub's arguments (%s) are not its @params (%s)"):format(args, declared), 0) end
  model.vars[owner].funcs[name] = { method = sep == ":", params = state.params, overloads = state.overloads }
  state.params, state.overloads = {}, {}
end

--- Read files ({ path = text }): the model { classes, aliases, errors };
-- errors lists every line that breaks the grammar and every type name that
-- is neither built in nor declared.
function M.read(files)
  local model = new_model()
  local paths = {}
  for path in pairs(files) do paths[#paths + 1] = path end
  table.sort(paths)
  for _, path in ipairs(paths) do
    local state, n = { params = {}, overloads = {} }, 0
    for line in (files[path]):gmatch "([^\n]*)\n" do
      n = n + 1
      local where = path .. ":" .. n
      local ok, err = pcall(read_line, model, line, where, state)
      if not ok then model.errors[#model.errors + 1] = where .. ": " .. tostring(err) end
    end
  end
  for _, u in ipairs(model.used) do
    if not (BUILTIN[u.name] or model.classes[u.name] or model.aliases[u.name]) then
      model.errors[#model.errors + 1] = u.where .. ": unknown type " .. u.name
    end
  end
  return model
end

--- The fields of a class and of its parents: name -> { optional }.
function M.all_fields(model, name)
  local out, cls = {}, model.classes[name]
  if not cls then return out end
  for _, p in ipairs(cls.parents) do
    for k, v in pairs(M.all_fields(model, p)) do out[k] = v end
  end
  for k, v in pairs(cls.fields) do out[k] = v end
  return out
end

return M
