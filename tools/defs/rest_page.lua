-- defs/rest_page.lua: docs/api/planfix-rest.md, every operation of
-- planfix_rest/ops.lua with its parameters and a Lua example.
local docs = require "defs.docs"

local R = {}

local LUA_VALUE = { integer = "1", number = "1", string = '"text"', boolean = "true", array = "{}",
  object = "{}", any = "planapi.null" }

--- A value of the parameter's type within its limits, as Lua source.
function R.example_value(p, num)
  local limits = p.limits or {}
  if limits.enum then return ("%q"):format(limits.enum[1]) end
  if p.location == "body (multipart)" and p.type ~= "string" then return '{ path = "report.pdf" }' end
  if limits.minimum and (p.type == "integer" or p.type == "number") then
    return num(math.max(limits.minimum, 1))
  end
  if limits.min_length and p.type == "string" then return ("%q"):format(("x"):rep(limits.min_length)) end
  return LUA_VALUE[p.type] or "nil"
end

-- A Lua key: name = or ["name"] =.
local function key(name)
  if name:match "^[%a_][%w_]*$" then return name end
  return ("[%q]"):format(name)
end

--- The example: a call with the required parameters (and the first of
-- "at least one of"); a paged list also as an each loop.
function R.example(ctx, o)
  local words = {}
  for _, p in ipairs(o.params) do
    local first_of_some = o.op.at_least_one and o.op.at_least_one[1] == p.name
    if p.required or first_of_some then
      words[#words + 1] = ("%s = %s"):format(key(p.name), R.example_value(p, ctx.M.num))
    end
  end
  local args = #words > 0 and ("{ " .. table.concat(words, ", ") .. " }") or "{}"
  local lines = { "```lua", ("local result, err = rest:call(%q, %s)"):format(o.id, args) }
  if o.op.paged and o.op.list_key then
    lines[#lines + 1] = ("for item in rest:each(%q, %s) do print(item.id) end"):format(o.id, args)
  end
  lines[#lines + 1] = "```"
  return table.concat(lines, "\n")
end

local function param_rows(ctx, o)
  local rows = {}
  for _, p in ipairs(o.params) do
    local where = p.location .. (p.wire and (" (sent as `" .. p.wire .. "`)") or "")
    -- a body parameter may be planapi.null: the page's intro says so once
    local lua_type = ctx.M.rest_type(p):gsub("|planapi%.Null$", "")
    rows[#rows + 1] = { "`" .. p.name .. "`", lua_type, where, p.required and "yes" or "",
      (ctx.help.limits_text(p.limits):gsub("^%((.*)%)$", "%1")) }
  end
  return rows
end

local function section(ctx, o)
  local op = o.op
  local out = { "### " .. o.id, "",
    ("%s. `%s %s`; %s."):format(op.summary or "", op.method, op.path,
      op.writes and (op.idempotent and "a write, repeated after a failure" or "a write, never repeated blindly")
        or "a read") }
  if op.at_least_one then out[#out + 1] = "At least one of: " .. table.concat(op.at_least_one, ", ") .. "." end
  if op.paged and op.list_key then
    out[#out + 1] = ("A paged list (`%s`, paging in the %s): `rest:each`, `rest:pages`, `rest:all`, `rest:pager`.")
      :format(op.list_key, op.paged)
  end
  out[#out + 1] = ""
  if #o.params == 0 then
    out[#out + 1] = "No parameters."
  else
    out[#out + 1] = docs.table({ "parameter", "type", "in", "required", "limits" }, param_rows(ctx, o))
  end
  out[#out + 1] = ""
  out[#out + 1] = R.example(ctx, o)
  return table.concat(out, "\n")
end

local function intro(ops, order)
  return docs.head("Planfix REST API: every operation", "lua/planapi/planfix_rest/ops.lua", {
    ("All %d operations of the official OpenAPI spec (Planfix REST API %s), as `rest:call(operationId, params, opts)`"
      .. " takes them (see README, \"Calling any operation\"). Types are the Lua values the client accepts: in the"
      .. " path or the query a string may also be a whole number; a body parameter may be `planapi.null` (JSON"
      .. " null). The editor definitions in `types/` carry the same."):format(#ops, require("planapi.planfix_rest.ops")
      .spec_version),
    "",
    "```lua",
    'local rest = require("planapi").planfix_rest { account = "acme", token = os.getenv "PLANFIX_TOKEN" }',
    "```",
  }, "Tags", order, true)
end

--- The whole page.
function R.page(ctx, ops, sugar)
  local tags, order = docs.group(ops, function(o) return o.op.tag or "Other" end)
  local out = { intro(ops, order) }
  for _, tag in ipairs(order) do
    out[#out + 1] = "## " .. tag
    for _, o in ipairs(tags[tag]) do out[#out + 1] = section(ctx, o) end
  end
  out[#out + 1] = docs.sugar_section("rest", sugar)
  return table.concat(out, "\n\n") .. "\n"
end

return R
