-- xml_decode.lua: CPU microseconds per planapi XML decode of a file.
--   lua5.4 bench/xml_decode.lua FILE ITERATIONS LISTS(comma separated)
package.cpath = "./?.so;" .. package.cpath
local core = require "planapi.core"
local f = assert(io.open(arg[1], "rb"))
local body = f:read "a"
f:close()
local n = tonumber(arg[2])
local lists = {}
for name in (arg[3] or "tasks"):gmatch "[^,]+" do lists[name] = true end
assert(core.xml_decode(body, lists))
collectgarbage()
local t0 = os.clock()
for _ = 1, n do core.xml_decode(body, lists) end
print(("planapi %.1f"):format((os.clock() - t0) / n * 1e6))
