-- planfix_xml/params.lua: the key parameters of each Planfix XML API method,
-- as the per-method pages of Planfix's XML API documentation list them, for
-- `planapi planfix-xml help <method>`. Notation: x.{a,b} is x.a and x.b; a|b
-- either one; * an element that may repeat; "" none. account, sid and signature
-- are left out (the client adds them). Plain data: loads under Lua 5.1/LuaJIT and 5.4.
return {
  ["action.add"] = "action.{description, task.{id|general} | contact.general, taskNewStatus, notifiedList.user.id*, "
    .. "isHidden, owner.id, dateTime, analitics.analitic*.{id, analiticData.itemData*.{fieldId,value}}}",
  ["action.delete"] = "action.id",
  ["action.get"] = "action.id",
  ["action.getList"] = "task.{id|general} | contact.general, pageCurrent, pageSize, sort",
  ["action.getListByPeriod"] = "fromDate, toDate, task.id (opt), pageCurrent, pageSize, sort",
  ["action.getListWithAnalitic"] = "analitic.id, task.id, pageCurrent, pageSize",
  ["action.update"] = "action.{id, description, taskNewStatus, notifiedList.user.id*, isHidden, dateTime, "
    .. "analitics.analitic*.{id, analiticData.{key, itemData*.{fieldId,value}}}, deletedAnalitics.key*}",
  ["analitic.getData"] = "analiticKeys.key*",
  ["analitic.getDataByCondition"] = "analitic.id, task.{id|general}, filters.filter*.{field, fromDate, toDate, "
    .. "userid}, pageCurrent, pageSize",
  ["analitic.getGroupList"] = "",
  ["analitic.getHandbook"] = "handbook.id",
  ["analitic.getList"] = "",
  ["analitic.getOptions"] = "analitic.id",
  ["auth.login"] = "account, login, password",
  ["contact.add"] = "contact.{template, name, midName, lastName, post, email, phones.phone*.{number,typeId,typeName}, "
    .. "secondaryEmails.email*, address, description, sex, site, skype, facebook, vk, icq, birthdate, lang, "
    .. "isCompany, canBeWorker, canBeClient, group.id, customData.customValue*.{id,value}, "
    .. "responsible.{users.id*,groups.id*}}",
  ["contact.delete"] = "contact.{id|userid|general}",
  ["contact.get"] = "contact.{id|userid|general}, fields.field*",
  ["contact.getFilterList"] = "",
  ["contact.getGroupList"] = "",
  ["contact.getList"] = "pageCurrent, pageSize, target, company, search, filters.filter*.{type,operator,value,field}, "
    .. "fields.field*",
  ["contact.getPhoneTypes"] = "",
  ["contact.managePlanfixAccess"] = "contact.{id|userid|general, email, havePlanfixAccess}",
  ["contact.update"] = "silent, contact.{id|userid|general, + contact.add fields except isCompany, "
    .. "telegram.{id,username}}",
  ["contact.updateContractors"] = "contact.{id, contractors.{addClient.id*, delClient.id*}}",
  ["contact.updateCustomData"] = "contact.{id|general, customData.customValue*.{id,value}}",
  ["contact.updateUserInfo"] = "contact.{id|userid|general, user.{password,status,email,pic,notifyByEmail}}",
  ["file.delete"] = "files.id*",
  ["file.download"] = "file.{id|uniqueId}",
  ["file.get"] = "file.{id|uniqueId}, returnDownloadLinks",
  ["file.getHistory"] = "file.id",
  ["file.getListForClient"] = "client.id, pageCurrent, pageSize",
  ["file.getListForProject"] = "project.id, pageCurrent, pageSize, returnDownloadLinks",
  ["file.getListForTask"] = "task.{id|general}, pageCurrent, pageSize, returnDownloadLinks, sort",
  ["file.getListForUser"] = "user.id, pageCurrent, pageSize",
  ["file.upload"] = "task.id | project.id, owner.id, target, action.id, files.file*.{name, sourceType, "
    .. "otherFile.{id,url}, body, description, newversion}, notifiedList.users.id*",
  ["handbook.addRecord"] = "handbook.id, parentKey, isGroup, name, archived, customData.customValue*.{id, value, "
    .. "files.file*.{…as file.upload}}",
  ["handbook.getGroupList"] = "",
  ["handbook.getList"] = "group.id",
  ["handbook.getRecord"] = "handbook.id, key",
  ["handbook.getRecordMulti"] = "handbook.id, records.key* (≤100)",
  ["handbook.getRecords"] = "handbook.id, parentKey, pageCurrent, pageSize",
  ["handbook.getStructure"] = "handbook.id",
  ["handbook.updateRecord"] = "handbook.id, key, + handbook.addRecord fields",
  ["project.add"] = "project.{title, description, owner.id, client.id, status, hidden, hasEndDate, endDate, group.id, "
    .. "parent.id, auditors.id*, managers.id*, workers.id*, customData.customValue*.{id,value}}",
  ["project.get"] = "project.{id|general}",
  ["project.getList"] = "user.id, target, status, sortType, client.id, filters.filter*.{type,operator,value,field}, "
    .. "pageCurrent, pageSize",
  ["project.update"] = "project.{id|general, + project.add fields, members.id*}",
  ["projectGroup.add"] = "projectGroup.name",
  ["projectGroup.get"] = "projectGroup.id",
  ["projectGroup.getList"] = "",
  ["projectGroup.move"] = "move.projectGroup.id, after.projectGroup.id",
  ["projectGroup.update"] = "projectGroup.{id,name}",
  ["task.accept"] = "task.id",
  ["task.add"] = "task.{template, title, description, importance, status, statusSet, checkResult, owner.id, "
    .. "parent.id, project.id, client.id, beginDateTime, start/end{Date,Time}IsSet, startDate, startTime, endDate, "
    .. "endTime, isSummary, duration, durationUnit, durationIsSet, {workers,members,auditors}.{users.id*,groups.id*}, "
    .. "customData.customValue*.{id,value}}",
  ["task.changeExpectDate"] = "task.id, expectDate",
  ["task.changeStatus"] = "task.{id|general}, status, dateTime",
  ["task.changeWorkers"] = "task.{id, workers.{addUsers.id*, addGroups.id*, delUsers.id*, delGroups.id*}}",
  ["task.get"] = "task.{id|general}",
  ["task.getFilterList"] = "",
  ["task.getList"] = "user.id, target, project.{id,withSubprojects}, parent.id, sort, status, filter, "
    .. "filters.filter*.{type,operator,value,field}, pageCurrent, pageSize",
  ["task.getMulti"] = "tasks.{id*|general*} (≤100)",
  ["task.getPossibleStatusToChange"] = "task.id",
  ["task.reject"] = "task.id, reason",
  ["task.update"] = "silent, task.{id|general, "
    .. "+ task.add fields except template/beginDateTime} (**resets omitted fields**)",
  ["task.updateCustomData"] = "task.{id|general, customData.customValue*.{id,value}}",
  ["taskStatus.getListOfSet"] = "taskStatusSet.id",
  ["taskStatus.getSetList"] = "",
  ["user.actionsAdded"] = "user.id, period.{begin,end}, actionType",
  ["user.add"] = "user.{name, midName, lastName, email, role, status, post.id, phones.phone*.{number,typeId,typeName}}",
  ["user.changeStatus"] = "user.{id,status}",
  ["user.get"] = "user.{id|general}",
  ["user.getList"] = "status, onlyOnline, userGroup.id, sortType, filters.filter*.{type,operator,value}, pageCurrent, "
    .. "pageSize",
  ["user.update"] = "user.{id, name, midName, lastName, email, role, status, password, birthdate, sex, phones…, "
    .. "isInvisibleOutOfGroup, isBlindOutOfGroup, userPic, post.id}",
  ["user.updateGroupMembership"] = "user.{id, addUserGroup.id*, delUserGroup.id*}",
  ["userGroup.add"] = "userGroup.name",
  ["userGroup.get"] = "userGroup.id",
  ["userGroup.getHeads"] = "userGroup.id",
  ["userGroup.getList"] = "sortType, pageCurrent, pageSize",
  ["userGroup.update"] = "userGroup.{id,name}",
}
