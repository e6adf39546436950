-- fixtures.lua: realistic Planfix XML API responses for the benchmarks.
--   lua5.4 bench/fixtures.lua tasks 100 > tasks-100.xml
local M = {}

local function task_xml(i)
  return ([[<task><id>%d</id><general>%d</general><title>Заявка №%d: проверить насос &amp; фильтры</title>]]
    .. [[<description>Клиент сообщил о шуме в насосной станции. Проверить давление, заменить фильтр, ]]
    .. [[составить акт. Contact the client before the visit &lt;call first&gt;.</description>]]
    .. [[<importance>AVERAGE</importance><status>2</status><statusSet>1</statusSet><checkResult>0</checkResult>]]
    .. [[<type>task</type><owner><id>1</id><name>Робот API</name></owner><parent><id>0</id></parent>]]
    .. [[<template><id>0</id></template><project><id>3</id><title>Обслуживание</title></project>]]
    .. [[<client><id>12</id><name>ООО Ромашка</name></client><beginDateTime>16-02-2024 09:30</beginDateTime>]]
    .. [[<startDate>16-02-2024</startDate><endDate>18-02-2024</endDate><duration>2</duration>]]
    .. [[<durationUnit>2</durationUnit><workers><users><user><id>2</id><name>Иван Петров</name></user></users>]]
    .. [[<groups/></workers><members><users/></members><auditors><users/></auditors>]]
    .. [[<customData><customValue><field><id>101</id><name>Квартал</name></field><value>Q1</value>]]
    .. [[<text>Q1</text></customValue><customValue><field><id>102</id><name>Сумма</name></field>]]
    .. [[<value>42</value><text>42</text></customValue></customData><isOverdued>0</isOverdued>]]
    .. [[<isSummary>0</isSummary><starred>0</starred></task>]]):format(i, 1000 + i, 1000 + i)
end

function M.tasks(n)
  local parts = { ('<?xml version="1.0" encoding="UTF-8"?><response status="ok"><tasks count="%d" totalCount="%d">')
    :format(n, n) }
  for i = 1, n do parts[#parts + 1] = task_xml(i) end
  parts[#parts + 1] = "</tasks></response>"
  return table.concat(parts)
end

if arg and arg[0] and arg[0]:match "fixtures%.lua$" then
  io.write(M[arg[1] or "tasks"](tonumber(arg[2]) or 100))
end

return M
