-- memory.lua (bench): peak RSS of a streamed export through planapi's REST
-- pager, against the same process before exporting, and the memory of one
-- idle client. Each measure runs in a fresh process (bench/memory_export.lua,
-- bench/memory_idle.lua) so that nothing else is in its RSS.
--   lua5.4 bench/memory.lua OUTDIR TASKS CLIENTS
-- Writes OUTDIR/memory.md, OUTDIR/memory.targets, OUTDIR/memory-rss.dat
-- (items, RSS MiB, Lua heap MiB: bench/plot.gp draws it).
package.path = "lua/?.lua;lua/?/init.lua;spec/helpers/?.lua;bench/?.lua;" .. package.path
package.cpath = "./?.so;" .. package.cpath
local sandbox = require "sandbox"
local core = require "planapi.core"
local util = require "bench_util"

local OUT, TASKS, CLIENTS = arg[1] or "build/bench", tonumber(arg[2]) or 100000, tonumber(arg[3]) or 100
local FIELDS = "id,name,description,status,assigner,assignees,dateTime,project,counterparty"
local env = sandbox.env()
sandbox.reset()
sandbox.data { tasks = TASKS }

local function run_json(cmd)
  local p = assert(io.popen("PLANAPI_SANDBOX_DIR=" .. util.shell_quote(env.dir) .. " " .. cmd))
  local out = p:read "a"
  assert(p:close(), "failed: " .. cmd .. "\n" .. out)
  return core.json_decode(out:match "[^\n]*{.*}")
end

local every = math.max(100, TASKS // 100)
local ex = run_json(("lua5.4 bench/memory_export.lua %s %d %s"):format(FIELDS, every, OUT .. "/memory-rss.dat"))
local idle = run_json("lua5.4 bench/memory_idle.lua " .. CLIENTS)
sandbox.reset()

local tenth, last
for _, a in ipairs(ex.at) do
  if not tenth and a[1] >= TASKS / 10 then tenth = a end
  last = a
end
local md, targets = {}, {}
local function add(s) md[#md + 1] = s end
add(("A streamed export of %s REST tasks (`rest:pager(\"get-task-list\", { fields = ... }, { page_size = 100 })`, "
  .. "fields %s), each item encoded as JSON and written to /dev/null as it comes; the sandbox's rate enforcement "
  .. "off and the client's pacing off, so the export runs as fast as the sandbox answers. RSS is this Lua 5.4 "
  .. "process's (`/proc/self/status`), sampled every %s items.")
  :format(util.thousands(TASKS), FIELDS, util.thousands(every)))
add ""
add "| measure | MiB |"
add "|---|---:|"
add(("| baseline: after loading planapi and making the client, before exporting | %.1f |"):format(ex.baseline))
add(("| after the first page (TLS connection open, 100 items decoded) | %.1f |"):format(ex.first_page))
add(("| RSS at %s items | %.1f |"):format(util.thousands(tenth[1]), tenth[2]))
add(("| RSS at %s items | %.1f |"):format(util.thousands(last[1]), last[2]))
add(("| **peak RSS** (VmHWM) over the whole export | **%.1f** |"):format(ex.peak))
add(("| peak minus baseline | %.1f |"):format(ex.peak - ex.baseline))
add ""
local growth = last[2] - tenth[2]
add(("%s items in %.1f s (%.0f items/s, bounded by the sandbox building each page). From %s to %s items the "
  .. "RSS changed by %.2f MiB: it does not grow with the number of items.")
  :format(util.thousands(ex.items), ex.seconds, ex.items / ex.seconds, util.thousands(tenth[1]),
    util.thousands(last[1]), growth))
add ""
add "![RSS over the course of the streamed export](bench/memory-rss.png)"
add ""
add(("One idle client (%d REST clients made and kept, deltas divided by %d; the first client of the process, "
  .. "which loads libcurl, OpenSSL, the CA file and the operation table once, is in the baseline):"):format(CLIENTS, CLIENTS))
add ""
add "| client | RSS KiB per client | Lua heap KiB per client |"
add "|---|---:|---:|"
add(("| made, never used | %.1f | %.1f |"):format(idle.new_rss_kib, idle.new_heap_kib))
add(("| after one call: holding its kept-alive TLS connection | %.1f | %.1f |")
  :format(idle.connected_rss_kib, idle.connected_heap_kib))
add ""
targets[1] = { ex.peak < 64, ("streamed export peak RSS under 64 MB at %s items"):format(util.thousands(TASKS)),
  ("%.1f MiB peak, %+.2f MiB from %s to %s items"):format(ex.peak, growth, util.thousands(tenth[1]), util.thousands(last[1])) }
util.write_section(OUT, "memory", md, targets)
