-- pager.lua: the shared page iterator with a resumable cursor.
-- An API layer gives it a fetch(cursor) function that returns one page of
-- items and the cursor of the page after it (nil when that was the last);
-- the pager turns that into page and item iterators that stop cleanly on
-- break and can be resumed from a saved cursor.

local Pager = {}
Pager.__index = Pager

--- pager.new(fetch, opts)
-- fetch(cursor) -> items, next_cursor | nil, err
-- opts.cursor   resume here: a page cursor, optionally with `skip` (items of
--               that page already consumed by an item iterator); false (the
--               position of a finished walk) gives nothing more
-- opts.max_pages, opts.max_items   stop after this many (a safety cap); when a
--               cap stops the walk before the end, pager.truncated is true
-- opts.dedupe   drop items whose `id` was already seen (offset paging over
--               changing data can repeat an item)
-- opts.errors   "raise" (the default): pages() and each() raise a failed
--               page's error; "yield": they hand it to the loop as
--               `false, err` and end there (pager:position() resumes)
-- opts.on_error function(err, pager) called with a failed page's error
--               instead of raising: returning "retry" reads the page again,
--               anything else ends the loop
-- The options every pager takes (Pager.new's), by the type they must have.
local PAGER_OPTIONS = {
  cursor = "table|false", max_pages = "number", max_items = "number", dedupe = "boolean",
  errors = "string", on_error = "function",
}
-- for tools/gen_defs.lua (editor definitions)
Pager.OPTIONS = PAGER_OPTIONS

local config_error = require("planapi.config_error")
local options = require("planapi.options")

--- Pager.check_options(what, opts, extra): a typo in a pager option
-- (`max_item = 2`) or a value of the wrong type raises a config error, as
-- client and call options do. extra: the API's own options by type, e.g.
-- { page_size = "number", timeout = "number" }; what names the method.
function Pager.check_options(what, opts, extra)
  if opts == nil then return end
  if type(opts) ~= "table" then config_error(what .. " options must be a table", 0) end
  options.check(what, opts, 0, PAGER_OPTIONS, extra or {})
end

function Pager.new(fetch, opts)
  opts = opts or {}
  Pager.check_options("pager", opts)
  for _, k in ipairs { "max_pages", "max_items" } do
    local v = opts[k]
    if v ~= nil and (v < 1 or v % 1 ~= 0) then
      config_error(k .. " must be a whole number from 1 up", 0)
    end
  end
  if opts.errors ~= nil and opts.errors ~= "raise" and opts.errors ~= "yield" then
    config_error(("pager option 'errors' must be \"raise\" or \"yield\" (got %q)"):format(opts.errors), 0)
  end
  local start = opts.cursor
  local finished = start == false -- a saved position of a walk that had ended
  if finished then start = nil end
  local self = setmetatable({
    fetch = fetch,
    cursor = start,                 -- the page the next fetch reads
    skip = start and start.skip or 0,
    pages_read = 0,
    items_read = 0,
    done = finished,
    max_pages = opts.max_pages,
    max_items = opts.max_items,
    seen = opts.dedupe and {} or nil,
    yield_errors = opts.errors == "yield",
    on_error = opts.on_error,
  }, Pager)
  return self
end

--- pager:next_page() -> items | false (no more pages) | nil, err
-- After an error the pager stays where it was: calling again retries the page.
function Pager:next_page()
  if self.done then return false end
  if self.max_pages and self.pages_read >= self.max_pages then
    self.truncated = true -- a cap, not the end of the list: say so
    return false
  end
  local items, next_cursor = self.fetch(self.cursor)
  if items == nil then return nil, next_cursor end
  self.pages_read = self.pages_read + 1
  -- The first page has no cursor; {} stands for it, so that a position
  -- inside it is { skip = n } (fetch reads an empty cursor as the start).
  self.page_cursor = self.cursor or {}
  self.cursor = next_cursor
  if next_cursor == nil then self.done = true end
  return items
end

--- The cursor to save: resuming with it continues with the first item not
-- yet handed out (pages() hands out whole pages; each() single items).
-- nil: nothing read yet; false: everything was read.
function Pager:position()
  if self.done and not self.in_page then return false end
  if self.page_cursor ~= nil and self.in_page then
    local c = {}
    for k, v in pairs(self.page_cursor) do c[k] = v end
    c.skip = self.in_page
    return c
  end
  return self.cursor
end

--- pager:all() -> items | nil, err: every remaining item in one array,
-- without raising (max_items still caps it).
function Pager:all()
  local out = {}
  while true do
    local items, err = self:next_page()
    if items == nil then return nil, err end
    if items == false then break end
    for i = self.skip + 1, #items do
      if self.max_items and #out >= self.max_items then
        self.truncated = true
        return out
      end
      out[#out + 1] = items[i]
    end
    self.skip = 0
  end
  return out
end

-- The next page for an iterator: items | false (the end) | false, err
-- (yielded to the loop). A failed page raises, unless errors = "yield"
-- (false, err once, then the end) or on_error decides (its "retry" reads
-- the page again).
function Pager:iterator_page()
  while true do
    if self.stopped then return false end
    local items, err = self:next_page()
    if items ~= nil then return items end
    if self.on_error then
      if self.on_error(err, self) ~= "retry" then return false end
    elseif self.yield_errors then
      self.stopped = true
      return false, err
    else
      error(err, 3)
    end
  end
end

--- for items in pager:pages() do ... end  -- raises the error on failure
-- (with errors = "yield": for items, err in ... do, items false on failure)
function Pager:pages()
  return function()
    local items, err = self:iterator_page()
    if items == false then
      if err then return false, err end
      return nil
    end
    self.in_page = nil
    return items
  end
end

--- for item in pager:each() do ... end  -- raises the error on failure
function Pager:each()
  local page, i = nil, 0
  return function()
    while true do
      if self.max_items and self.items_read >= self.max_items then
        if not self.done or (page and i < #page) then self.truncated = true end
        return nil
      end
      if page == nil or i >= #page then
        local items, err = self:iterator_page()
        if items == false then
          self.in_page = nil
          if err then return false, err end
          return nil
        end
        page, i = items, 0
        if self.skip > 0 then -- resuming inside this page
          i = math.min(self.skip, #page)
          self.skip = 0
        end
      end
      i = i + 1
      self.in_page = i
      local item = page[i]
      if item ~= nil then
        local id = self.seen and type(item) == "table" and item.id
        if not id or not self.seen[id] then
          if id then self.seen[id] = true end
          self.items_read = self.items_read + 1
          if i >= #page then self.in_page = nil end -- page consumed: resume at the next
          return item
        end
      end
    end
  end
end

return Pager
