"""proto/openapi.yaml describes exactly the routes trcd registers (server/*.c http_route calls),
with the methods they take, and its error schema is the one the server sends."""
import glob
import os
import re

import yaml

from conftest import ROOT

ROUTE = re.compile(r'http_route\(\s*srv,\s*"([A-Z]+)",\s*"([^"]+)"')


def registered():
    routes = set()
    for path in glob.glob(os.path.join(ROOT, "server", "*.c")):
        with open(path) as f:
            for method, pattern in ROUTE.findall(f.read()):
                routes.add((method.lower(), pattern.replace("{path*}", "{path}")))
    return routes


def documented():
    with open(os.path.join(ROOT, "proto", "openapi.yaml")) as f:
        spec = yaml.safe_load(f)
    assert spec["openapi"].startswith("3.0")
    out = set()
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "delete", "patch"):
                out.add((method, path))
    return spec, out


def test_every_route_is_documented_and_nothing_else():
    routes = registered()
    spec, docs = documented()
    assert ("post", "/v1/control") in routes and len(routes) >= 15
    assert routes - docs == set(), "routes missing from openapi.yaml"
    assert docs - routes == set(), "openapi.yaml documents routes trcd does not have"


def test_error_schema_matches_the_wire(trcd):
    spec, _ = documented()
    schema = spec["components"]["schemas"]["Error"]["properties"]["error"]
    r = trcd.request("POST", "/v1/control", json={"state": [1]})
    err = r.json()["error"]
    assert set(err) <= set(schema["properties"]) and set(schema["required"]) <= set(err)
    assert err["type"] in schema["properties"]["type"]["enum"]


def test_model_info_fields_are_documented(trcd):
    spec, _ = documented()
    schema = spec["components"]["schemas"]["ModelInfo"]
    info = trcd.request("GET", "/v1/models/default").json()
    assert set(info) == set(schema["properties"])
    assert set(info["config"]) == set(schema["properties"]["config"]["properties"])


def test_response_checker_catches_drift():
    """openapi_check (run on every response conftest's request() gets) fails on what the
    description does not say: an undocumented status, a body missing a required field or of the
    wrong shape, an undocumented content type; and accepts what it does say."""
    import openapi_check as oc
    js = {"content-type": "application/json"}
    ok = b'{"model": {"name": "d", "version": "v"}, "controls": [[0.5]], "final_state": [0, 0],' \
         b' "final_error": 0.1, "cost": 0.25, "timing_ms": 0.2}'
    oc.check("POST", "/v1/control", 200, js, ok)
    batch = b'{"model": {"name": "d", "version": "v"}, "controls": [[[0.5]]], ' \
            b'"final_state": [[0, 0]], "final_error": [0.1], "cost": [0.25], "timing_ms": 0.2}'
    oc.check("POST", "/v1/control", 200, js, batch)
    bad = [
        ("POST", "/v1/control", 418, js, b'{"error": {"code": 418, "type": "x", "message": "m"}}'),
        ("POST", "/v1/control", 200, js, ok.replace(b'"cost": 0.25, ', b"")),
        ("POST", "/v1/control", 200, js, ok.replace(b'"final_error": 0.1', b'"final_error": "0.1"')),
        ("POST", "/v1/control", 400, js, b'{"error": {"code": 400, "type": "nope", "message": "m"}}'),
        ("GET", "/v1/models", 200, {"content-type": "text/plain"}, b"models"),
        ("GET", "/v1/jobs/abc", 200, js, b'{"job_id": "abc"}'),
        ("DELETE", "/v1/nope", 404, js, b'{"message": "not the error shape"}'),
    ]
    for method, path, status, headers, body in bad:
        try:
            oc.check(method, path, status, headers, body)
        except AssertionError:
            continue
        raise AssertionError("not caught: %s %s %d %r" % (method, path, status, body))
