-- planado/fields.lua: the documented request fields of Planado API v2
-- resources (Planado's API v2 documentation), for strict key checks: Planado silently
-- ignores unknown keys, so a typo would otherwise be "nothing happened".
-- field = true: may be sent as planapi.null (clears the value);
-- field = false: must be a value or left out (absent = unchanged).
return {
  job = {
    template = false, job_type = false, external_id = false, external_order_id = true,
    description = true, scheduled_at = true, scheduled_duration = true,
    assignee = true, assignees = false, possible_resolutions = false,
    address = false, contacts = false, client = true, site = true, territory = true,
    skills = false, custom_fields = false, report_fields = false,
    version = false, -- sent back by integrators on PATCH; its effect is undocumented
  },
  client = {
    organization = false, organization_name = true, first_name = true, last_name = true,
    middle_name = true, external_id = false, site_address = true, contacts = true,
    custom_fields = true, version = false,
  },
  site = {
    name = false, external_id = false, description = true, client = true, address = true,
    contacts = true, territory = true, version = false,
  },
  service = {
    name = false, category = true, external_id = false, description = true, price_default = true,
  },
  product = {
    name = false, unit = false, category = true, external_id = false, description = true,
    price_default = true, gtin = true,
  },
  print_request = { job = false, print_template = false },
}
