"""Validates API answers against the official OpenAPI file's response schemas
with python3-jsonschema (Debian's), a validator that is not our code.

usage: openapi_answers.py SPEC.json CASES.json
CASES.json: [{"method": "get", "path": "/customfield/{id}", "status": "200", "body": {...}}, ...]
Prints a JSON array with one list of messages per case ([] when valid); a case
whose operation or response the spec does not document gets one message
saying so. OpenAPI 3.0 schemas are read as JSON Schema draft 4 with their
$refs resolved in the spec document (OpenAPI's own keywords, such as
`example` or `readOnly`, are annotations there).
"""
import json
import sys
import warnings

import jsonschema

warnings.simplefilter("ignore", DeprecationWarning)


def response_schema(doc, case):
    op = doc.get("paths", {}).get(case["path"], {}).get(case["method"])
    if op is None:
        return None, "the spec has no operation %s %s" % (case["method"].upper(), case["path"])
    response = op.get("responses", {}).get(str(case["status"]))
    if response is None:
        return None, "the spec documents no %s answer for this operation" % case["status"]
    content = response.get("content", {}).get("application/json")
    if content is None or "schema" not in content:
        return None, "the spec gives no JSON schema for this answer"
    return content["schema"], None


def location(error):
    return ".".join(str(p) for p in error.absolute_path) or "(body)"


def check(doc, resolver, case):
    schema, why = response_schema(doc, case)
    if schema is None:
        return [why]
    validator = jsonschema.Draft4Validator(schema, resolver=resolver)
    return sorted("%s: %s" % (location(e), e.message) for e in validator.iter_errors(case["body"]))


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        cases = json.load(f)
    resolver = jsonschema.RefResolver.from_schema(doc)
    json.dump([check(doc, resolver, c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
