"""Checks a response trcd sent against proto/openapi.yaml, so the description cannot drift from
the server: the route and method are found the way trcd routes them, the status must be one the
operation documents, and a JSON body must match the documented schema (OpenAPI 3.0 turned into
JSON Schema draft 4: $refs inlined, `nullable` as a "null" type; Debian's python3-jsonschema).

    check(method, path, status, headers, body)   # raises AssertionError naming what differs

conftest.Trcd.request calls it for every response (request(..., schema=False) opts out, for a
test that sends what no client should)."""
import copy
import json
import os
import re

import jsonschema
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC_PATH = os.path.join(ROOT, "proto", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "patch", "options", "head")

with open(SPEC_PATH) as _f:
    SPEC = yaml.safe_load(_f)


def _resolve(ref):
    assert ref.startswith("#/"), "only local $refs: %s" % ref
    node = SPEC
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def to_json_schema(node):
    """An OpenAPI 3.0 schema object as a self-contained JSON Schema (draft 4) object."""
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return to_json_schema(_resolve(node["$ref"]))
    out = {}
    for k, v in node.items():
        if k in ("example", "examples", "xml", "externalDocs", "discriminator", "readOnly",
                 "writeOnly", "deprecated", "nullable"):
            continue
        if k == "properties":
            out[k] = {name: to_json_schema(s) for name, s in v.items()}
        else:
            out[k] = to_json_schema(v)
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
        if "type" not in out:  # e.g. allOf + nullable
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _template_regex(template):
    # {path} of the dashboard route takes the rest of the path, like trcd's {path*}
    parts = re.split(r"(\{[^}]+\})", template)
    rx = ""
    for p in parts:
        if p == "{path}":
            rx += ".*"
        elif p.startswith("{"):
            rx += "[^/]+"
        else:
            rx += re.escape(p)
    return re.compile("^" + rx + "$")


# literal routes first, then templates, the catch-all last (as trcd matches them)
_ROUTES = sorted(SPEC["paths"].items(),
                 key=lambda kv: (kv[0] == "/{path}", "{" in kv[0], kv[0]))
_ROUTES = [(t, _template_regex(t), item) for t, item in _ROUTES]


def find_route(path):
    path = path.split("?", 1)[0]
    for template, rx, item in _ROUTES:
        if rx.match(path):
            return template, item
    return None, None


def _error_schema():
    return to_json_schema({"$ref": "#/components/schemas/Error"})


def _validate(instance, schema, what):
    try:
        jsonschema.Draft4Validator(schema).validate(instance)
    except jsonschema.ValidationError as e:
        loc = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise AssertionError("%s: body does not match proto/openapi.yaml at %s: %s\nbody: %s"
                             % (what, loc, e.message, json.dumps(instance)[:600])) from None


def check(method, path, status, headers, body):
    """headers: a dict with lower-case names; body: bytes."""
    method = method.lower()
    what = "%s %s -> %d" % (method.upper(), path, status)
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    doc = None
    if ctype == "application/json":
        try:
            doc = json.loads(body.decode())
        except ValueError:
            raise AssertionError("%s: Content-Type application/json but the body is not JSON: %r"
                                 % (what, body[:200])) from None
    template, item = find_route(path)
    op = item.get(method) if item else None
    if op is None:
        # no such route, or not with this method (404/405, a CORS preflight): not an
        # operation of the description, but every error still has the one shape
        if status >= 400 and doc is not None:
            _validate(doc, _error_schema(), what)
        return
    responses = op.get("responses", {})
    resp = responses.get(str(status)) or responses.get("%dXX" % (status // 100)) or \
        responses.get("default")
    assert resp is not None, (
        "%s: status %d is not documented for %s %s in proto/openapi.yaml (documented: %s)"
        % (what, status, method.upper(), template, ", ".join(sorted(responses))))
    if "$ref" in resp:
        resp = _resolve(resp["$ref"])
    content = resp.get("content")
    if not content or not body:
        return
    key = ctype if ctype in content else ctype.split("/")[0] + "/*"
    key = key if key in content else "*/*"
    assert key in content, ("%s: Content-Type %r is not documented for %s %s (documented: %s)"
                            % (what, ctype, method.upper(), template, ", ".join(content)))
    schema = content[key].get("schema")
    if doc is not None and key == "application/json" and schema is not None:
        _validate(doc, to_json_schema(copy.deepcopy(schema)), what)
