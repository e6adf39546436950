-- The sandbox's default credentials, in one place: the emulated APIs accept
-- them after every reset, and `planapi sandbox start` prints them (as the
-- PLANFIX_* and PLANADO_* variables the CLI reads) for a user's own tests.
-- A plain table with no require: the CLI loads this file by its path.
return {
  rest_token = "sandbox-token",
  xml = {
    account = "sandbox",
    api_key = "sandbox-api-key",
    private_key = "sandbox-private-key",
    token = "sandbox-xml-token",
    login = "robot",
    password = "robot-pass",
  },
  planado_api_key = "sandbox-planado-key",
}
