-- xml_decode_lom.lua: CPU microseconds per lua-expat tree build (lxp.lom)
-- of a file: what a Lua script without planapi would use.
--   lua5.4 bench/xml_decode_lom.lua FILE ITERATIONS
local lom = require "lxp.lom"
local f = assert(io.open(arg[1], "rb"))
local body = f:read "a"
f:close()
local n = tonumber(arg[2])
assert(lom.parse(body))
collectgarbage()
local t0 = os.clock()
for _ = 1, n do lom.parse(body) end
print(("lom %.1f"):format((os.clock() - t0) / n * 1e6))
