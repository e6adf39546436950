-- webhook_store.lua: the stores of planapi.events (events/store.lua) under
-- their first name, kept for receivers written before them:
--   planapi.webhook_store.memory{ max = } / .file{ dir = }
return require "planapi.events.store"
