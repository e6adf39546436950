// openapi_responses.js: judges response bodies against the official Planfix
// REST OpenAPI file's response schemas with Ajv (the JSON Schema validator
// Stoplight Prism brings, tools/prism/node_modules), not with our code.
//   node spec/helpers/openapi_responses.js SPEC.json < cases.json
// cases: [{ "operation": "get-task-list", "status": 200, "body": {...} } |
//         { "schema": "ApiResponseError", "body": {...} }]
// prints: [{ "valid": true|false, "errors": "...", "missing": "why no schema" }]
// --numeric-enums (after SPEC.json): the file's numeric enums that mix in strings such as
// "1 // Task assigner" (the filter types) read as their leading numbers, as the Planfix REST
// API documentation means them (strict validators refuse the number 1 otherwise).
"use strict";
const path = require("path");
const fs = require("fs");
const Ajv = require(path.resolve(__dirname, "../../tools/prism/node_modules/ajv"));

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const addFormats = require(path.resolve(__dirname, "../../tools/prism/node_modules/ajv-formats"));
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
// OpenAPI's own number formats, which JSON Schema does not define.
ajv.addFormat("int32", { type: "number", validate: (n) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat("int64", { type: "number", validate: (n) => Number.isInteger(n) });
function numericEnums(node) {
  if (Array.isArray(node)) return node.forEach(numericEnums);
  if (!node || typeof node !== "object") return;
  if (Array.isArray(node.enum) && (node.type === "number" || node.type === "integer")) {
    node.enum = node.enum.map((v) => (typeof v === "string" && /^\s*\d+\s*\/\//.test(v) ? parseInt(v, 10) : v));
  }
  Object.values(node).forEach(numericEnums);
}
if (process.argv[3] === "--numeric-enums") numericEnums(spec);
ajv.addSchema(spec, "openapi");

const pointer = (parts) => parts.map((p) => encodeURIComponent(String(p).replace(/~/g, "~0").replace(/\//g, "~1")));

function schemaRef(c) {
  if (c.schema) return { ref: "openapi#/" + pointer(["components", "schemas", c.schema]).join("/") };
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (op && op.operationId === c.operation) {
        const res = op.responses && op.responses[String(c.status)];
        if (!res) return { missing: `${c.operation} documents no ${c.status}` };
        const media = res.content && res.content["application/json"];
        if (!media || !media.schema) return { missing: `${c.operation} ${c.status} has no JSON schema` };
        const parts = ["paths", p, method, "responses", String(c.status), "content", "application/json", "schema"];
        return { ref: "openapi#/" + pointer(parts).join("/") };
      }
    }
  }
  return { missing: `no operation ${c.operation}` };
}

const out = cases.map((c) => {
  const found = schemaRef(c);
  if (found.missing) return { valid: false, missing: found.missing };
  const validate = ajv.compile({ $ref: found.ref });
  const valid = validate(c.body);
  return { valid, errors: valid ? "" : ajv.errorsText(validate.errors) };
});
process.stdout.write(JSON.stringify(out));
