-- planfix_xml/methods.lua: the Planfix XML API methods, written by hand from
-- Planfix's XML API documentation (its method list, 79 methods including
-- auth.login; the legacy client.getList is left out on purpose) and its
-- list answers' count attributes.
-- Plain data: it loads under Lua 5.1/LuaJIT and 5.4 alike.
--
-- methods[name] fields:
--   root    the element under <response status="ok"> on success ("tasks" for
--           <tasks count totalCount>, "sid", "count", "key", ...); nil for
--           file.download, whose answer is not XML.
--   item    list methods only: the child element that makes one item of the
--           list (tasks -> task). Names the facts do not show are marked
--           "item name inferred"; a decoder should treat every child of a list
--           root as an item rather than trust the name alone.
--   list    true when root is a list container: decode it to an array even with
--           0 or 1 item.
--   paged   true when the method takes pageCurrent (1-based) + pageSize (<= 100).
--   counts  list methods only: which attributes the list root carries:
--           "both" (count + totalCount), "total" (totalCount only),
--           "count" (count only: task.getMulti), "none" (neither; page until
--           a short page). Absent on non-list methods.
--   raw     true for file.download: 200 = file bytes, 302 = Location,
--           403/404 = XML error (the documentation of file.download).
--   silent  true where the documented <silent>1</silent> flag applies.
--   writes  true when the method changes data (add, update, delete, change*,
--           move, accept, reject, upload, manage*, addRecord, updateRecord,
--           update*); absent for reads. A write is never repeated blindly.
--   group   the part of the name before the dot.
--
-- nested_lists[element] = item: elements that hold a list wherever they appear
-- inside a response, so the decoder makes their `item` children an array even
-- with 0 or 1 of them. Taken from the repeated (`x*`) parameter shapes of the documented methods.

return {
  methods = {
    ["action.add"]                     = { root = "action", writes = true, group = "action" },
    ["action.delete"]                  = { root = "action", writes = true, group = "action" },
    ["action.get"]                     = { root = "action", group = "action" },
    ["action.getList"]                 = { root = "actions", item = "action", list = true, paged = true, counts = "both", group = "action" },
    ["action.getListByPeriod"]         = { root = "actions", item = "action", list = true, paged = true, counts = "both", group = "action" },
    ["action.getListWithAnalitic"]     = { root = "actions", item = "action", list = true, paged = true, counts = "both", group = "action" },
    ["action.update"]                  = { root = "action", writes = true, group = "action" },
    ["analitic.getData"]               = { root = "analiticDatas", item = "analiticData", list = true, counts = "none", group = "analitic" },
    ["analitic.getDataByCondition"]    = { root = "analiticDatas", item = "analiticData", list = true, paged = true, counts = "none", group = "analitic" },
    ["analitic.getGroupList"]          = { root = "analiticGroups", item = "analiticGroup", list = true, counts = "both", group = "analitic" }, -- item name inferred
    ["analitic.getHandbook"]           = { root = "records", item = "record", list = true, counts = "none", group = "analitic" },
    ["analitic.getList"]               = { root = "analitics", item = "analitic", list = true, counts = "both", group = "analitic" },
    ["analitic.getOptions"]            = { root = "analitic", group = "analitic" },
    ["auth.login"]                     = { root = "sid", group = "auth" },
    ["contact.add"]                    = { root = "contact", writes = true, group = "contact" },
    ["contact.delete"]                 = { root = "contact", writes = true, group = "contact" },
    ["contact.get"]                    = { root = "contact", group = "contact" },
    ["contact.getFilterList"]          = { root = "contactFilterList", item = "contactFilter", list = true, counts = "total", group = "contact" }, -- item name inferred
    ["contact.getGroupList"]           = { root = "contactGroups", item = "contactGroup", list = true, counts = "both", group = "contact" }, -- item name inferred
    ["contact.getList"]                = { root = "contacts", item = "contact", list = true, paged = true, counts = "both", group = "contact" },
    ["contact.getPhoneTypes"]          = { root = "phoneTypes", item = "phoneType", list = true, counts = "total", group = "contact" }, -- item name inferred
    ["contact.managePlanfixAccess"]    = { root = "contact", writes = true, group = "contact" },
    ["contact.update"]                 = { root = "contact", silent = true, writes = true, group = "contact" },
    ["contact.updateContractors"]      = { root = "contact", writes = true, group = "contact" },
    ["contact.updateCustomData"]       = { root = "contact", writes = true, group = "contact" },
    ["contact.updateUserInfo"]         = { root = "contact", writes = true, group = "contact" },
    ["file.delete"]                    = { root = "count", writes = true, group = "file" },
    ["file.download"]                  = { root = nil, raw = true, group = "file" },
    ["file.get"]                       = { root = "file", group = "file" },
    ["file.getHistory"]                = { root = "files", item = "file", list = true, counts = "both", group = "file" },
    ["file.getListForClient"]          = { root = "files", item = "file", list = true, paged = true, counts = "both", group = "file" },
    ["file.getListForProject"]         = { root = "files", item = "file", list = true, paged = true, counts = "both", group = "file" },
    ["file.getListForTask"]            = { root = "files", item = "file", list = true, paged = true, counts = "both", group = "file" },
    ["file.getListForUser"]            = { root = "files", item = "file", list = true, paged = true, counts = "both", group = "file" },
    ["file.upload"]                    = { root = "files", item = "file", list = true, counts = "none", writes = true, group = "file" }, -- counts not documented
    ["handbook.addRecord"]             = { root = "key", writes = true, group = "handbook" },
    ["handbook.getGroupList"]          = { root = "handbookGroups", item = "handbookGroup", list = true, counts = "both", group = "handbook" }, -- item name inferred
    ["handbook.getList"]               = { root = "handbooks", item = "handbook", list = true, counts = "both", group = "handbook" },
    ["handbook.getRecord"]             = { root = "record", group = "handbook" },
    ["handbook.getRecordMulti"]        = { root = "records", item = "record", list = true, counts = "none", group = "handbook" },
    ["handbook.getRecords"]            = { root = "records", item = "record", list = true, paged = true, counts = "none", group = "handbook" },
    ["handbook.getStructure"]          = { root = "handbook", group = "handbook" },
    ["handbook.updateRecord"]          = { root = "key", writes = true, group = "handbook" },
    ["project.add"]                    = { root = "project", writes = true, group = "project" },
    ["project.get"]                    = { root = "project", group = "project" },
    ["project.getList"]                = { root = "projects", item = "project", list = true, paged = true, counts = "both", group = "project" },
    ["project.update"]                 = { root = "project", writes = true, group = "project" },
    ["projectGroup.add"]               = { root = "projectGroup", writes = true, group = "projectGroup" },
    ["projectGroup.get"]               = { root = "projectGroup", group = "projectGroup" },
    ["projectGroup.getList"]           = { root = "projectGroups", item = "projectGroup", list = true, counts = "total", group = "projectGroup" },
    ["projectGroup.move"]              = { root = "projectGroup", writes = true, group = "projectGroup" },
    ["projectGroup.update"]            = { root = "projectGroup", writes = true, group = "projectGroup" },
    ["task.accept"]                    = { root = "task", writes = true, group = "task" },
    ["task.add"]                       = { root = "task", writes = true, group = "task" },
    ["task.changeExpectDate"]          = { root = "task", writes = true, group = "task" },
    ["task.changeStatus"]              = { root = "task", writes = true, group = "task" },
    ["task.changeWorkers"]             = { root = "task", writes = true, group = "task" },
    ["task.get"]                       = { root = "task", group = "task" },
    ["task.getFilterList"]             = { root = "taskFilterList", item = "taskFilter", list = true, counts = "total", group = "task" }, -- item name inferred
    ["task.getList"]                   = { root = "tasks", item = "task", list = true, paged = true, counts = "both", group = "task" },
    ["task.getMulti"]                  = { root = "tasks", item = "task", list = true, counts = "count", group = "task" },
    ["task.getPossibleStatusToChange"] = { root = "statusList", item = "status", list = true, counts = "total", group = "task" }, -- item name inferred
    ["task.reject"]                    = { root = "task", writes = true, group = "task" },
    ["task.update"]                    = { root = "task", silent = true, writes = true, group = "task" },
    ["task.updateCustomData"]          = { root = "task", writes = true, group = "task" },
    ["taskStatus.getListOfSet"]        = { root = "taskStatuses", item = "taskStatus", list = true, counts = "total", group = "taskStatus" }, -- item name inferred
    ["taskStatus.getSetList"]          = { root = "taskStatusSets", item = "taskStatusSet", list = true, counts = "total", group = "taskStatus" }, -- item name inferred
    ["user.actionsAdded"]              = { root = "count", group = "user" },
    ["user.add"]                       = { root = "user", writes = true, group = "user" },
    ["user.changeStatus"]              = { root = "user", writes = true, group = "user" },
    ["user.get"]                       = { root = "user", group = "user" },
    ["user.getList"]                   = { root = "users", item = "user", list = true, paged = true, counts = "both", group = "user" },
    ["user.update"]                    = { root = "user", writes = true, group = "user" },
    ["user.updateGroupMembership"]     = { root = "user", writes = true, group = "user" },
    ["userGroup.add"]                  = { root = "userGroup", writes = true, group = "userGroup" },
    ["userGroup.get"]                  = { root = "userGroup", group = "userGroup" },
    ["userGroup.getHeads"]             = { root = "users", item = "user", list = true, counts = "both", group = "userGroup" },
    ["userGroup.getList"]              = { root = "userGroups", item = "userGroup", list = true, paged = true, counts = "both", group = "userGroup" },
    ["userGroup.update"]               = { root = "userGroup", writes = true, group = "userGroup" },
  },
  nested_lists = {
    analiticData    = "itemData",    -- analiticData.itemData*
    analitics       = "analitic",    -- analitics.analitic*
    customData      = "customValue", -- customData.customValue*
    files           = "file",        -- files.file* (file.upload, handbook record files)
    groups          = "group",       -- {workers,members,auditors,responsible}.groups: response items inferred (requests send groups.id*)
    notifiedList    = "user",        -- notifiedList.user.id*: one <user> per notified employee, inferred
    phones          = "phone",       -- phones.phone*
    secondaryEmails = "email",       -- secondaryEmails.email*
    users           = "user",        -- {workers,members,auditors,responsible}.users: response items inferred (requests send users.id*)
  },
}
