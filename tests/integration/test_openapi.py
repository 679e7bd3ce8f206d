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
