-- planapi.events: receiving events (Planfix scenario requests, Planado
-- webhooks) once each: the receiver core and its stores.
--   local events = require "planapi.events"     -- or planapi.events
--   local r = events.receiver{ secret =, secret_in =, parse =, store = events.file{ dir = } }
--   stores: events.memory{ max = }, events.file{ dir = }, events.redis{ url = }
local store = require "planapi.events.store"
local receiver = require "planapi.events.receiver"

return {
  --- events.receiver{...}: the receiver core (events/receiver.lua)
  receiver = receiver.new,
  --- events.memory{ max = } (one process) and events.file{ dir = } (the processes of one host)
  memory = store.memory,
  file = store.file,
  --- events.redis{ url = "redis://...", key_prefix =, ... }: every host (events/store_redis.lua)
  redis = function(opts) return require("planapi.events.store_redis").new(opts) end,
}
