-- The Planfix REST quick start: list tasks, create one, comment on it.
--
--   PLANFIX_ACCOUNT=acme PLANFIX_TOKEN=... lua5.4 examples/planfix_rest_tasks.lua
--
-- PLANFIX_REST_URL (instead of the account) and PLANAPI_CA_FILE point it at
-- another server, such as the local sandbox (see make test).
local planapi = require "planapi"

local token = os.getenv "PLANFIX_TOKEN"
if not token then
  io.stderr:write "set PLANFIX_TOKEN (and PLANFIX_ACCOUNT or PLANFIX_REST_URL)\n"
  os.exit(2)
end

local rest = planapi.planfix_rest {
  account = os.getenv "PLANFIX_ACCOUNT",
  base_url = os.getenv "PLANFIX_REST_URL",
  token = token,
  ca_file = os.getenv "PLANAPI_CA_FILE",
}

-- Every task, page by page (100 a request, 1 request a second).
local count = 0
for task in rest.tasks:each { fields = "id,name,status" } do
  count = count + 1
  if count <= 5 then print(("task %d: %s"):format(task.id, task.name)) end
end
print(("%d tasks in all"):format(count))

-- Create, then comment. Runtime failures come back as nil, err.
local id, err = rest.tasks:create { name = "Call the client back", description = "Created by planapi" }
if not id then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
print("created task " .. id)
local comment = assert(rest.tasks:add_comment(id, { description = "Called, no answer yet" }))
print("commented: " .. comment)
rest:close()
