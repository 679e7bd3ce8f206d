"""Runs every case folder of tests/api/cases (request.json + expected.json, see
tests/api/README.md) against one real trcd."""
import json
import math
import os

import pytest

import subprocess

from conftest import MAKE_MODEL, ROOT, SMALL_INIT, SMALL_RANDOM, Trcd

CASES_DIR = os.path.join(ROOT, "tests", "api", "cases")
CASES = sorted(d for d in os.listdir(CASES_DIR) if os.path.isdir(os.path.join(CASES_DIR, d)))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    dash = root / "dashboard"
    dash.mkdir()
    (dash / "index.html").write_text("<!doctype html><title>TRC</title>")
    (dash / "app.js").write_text("console.log('trc');")
    (root / "secret.txt").write_text("not for clients")
    # rocket_landing (s=7, m=3, T=50): a bare checkpoint and a sidecar naming the system
    rocket = str(root / "rocket_src.safetensors")
    subprocess.run(["/usr/bin/python3", MAKE_MODEL, rocket, "--size", "small", "--s", "7",
                    "--m", "3", "--T", "50", "--seed", "5"], check=True)
    srv = Trcd(root, args=["--max-batch", "64"], models={"default": SMALL_INIT,
                                                        "random": SMALL_RANDOM,
                                                        "rocket": rocket},
               dashboard_dir=str(dash))
    with open(os.path.join(srv.models_dir, "rocket.json"), "w") as f:
        json.dump({"system": "rocket_landing", "m": 3, "bound": 15000, "dt": 1.0}, f)
    srv.start()
    yield srv
    srv.stop()


def match(expected, actual, where="body"):
    """Asserts that actual contains expected (see tests/api/README.md)."""
    if isinstance(expected, str) and expected.startswith("$"):
        kind, _, arg = expected[1:].partition(":")
        checks = {
            "any": lambda a: True,
            "number": lambda a: isinstance(a, (int, float)) and not isinstance(a, bool),
            "string": lambda a: isinstance(a, str),
            "array": lambda a: isinstance(a, list),
            "object": lambda a: isinstance(a, dict),
            "contains": lambda a: isinstance(a, str) and arg in a,
            "len": lambda a: isinstance(a, list) and len(a) == int(arg),
        }
        assert kind in checks, "unknown marker %s at %s" % (expected, where)
        assert checks[kind](actual), "%s: %r does not match %s" % (where, actual, expected)
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), "%s: expected an object, got %r" % (where, actual)
        for k, v in expected.items():
            assert k in actual, "%s: missing key %r in %r" % (where, k, actual)
            match(v, actual[k], where + "." + k)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), \
            "%s: expected %d elements, got %r" % (where, len(expected), actual)
        for i, (e, a) in enumerate(zip(expected, actual)):
            match(e, a, "%s[%d]" % (where, i))
    elif isinstance(expected, float) or (isinstance(expected, int) and isinstance(actual, float)):
        assert isinstance(actual, (int, float)) and math.isclose(
            actual, expected, rel_tol=1e-5, abs_tol=1e-6), "%s: %r != %r" % (where, actual, expected)
    else:
        assert actual == expected, "%s: %r != %r" % (where, actual, expected)


@pytest.mark.parametrize("case", CASES)
def test_case(server, case):
    with open(os.path.join(CASES_DIR, case, "request.json")) as f:
        req = json.load(f)
    with open(os.path.join(CASES_DIR, case, "expected.json")) as f:
        exp = json.load(f)
    headers = dict(req.get("headers", {}))
    body = None
    if "body_text" in req:
        body = req["body_text"]
    elif "body" in req:
        body = json.dumps(req["body"])
        headers.setdefault("Content-Type", "application/json")
    r = server.request(req["method"], req["path"], body=body, headers=headers)
    assert r.status == exp["status"], "%s: status %d, body %s" % (case, r.status, r.text[:500])
    for name, value in exp.get("headers", {}).items():
        if value is None:
            assert name.lower() not in r.headers, "%s: header %s present" % (case, name)
        else:
            assert name.lower() in r.headers, "%s: header %s absent" % (case, name)
            match(value, r.headers[name.lower()], "header " + name)
    if "body" in exp:
        assert r.headers.get("content-type", "").startswith("application/json"), r.headers
        match(exp["body"], r.json())
    for text in exp.get("body_contains", []):
        assert text in r.text, "%s: %r not in body %s" % (case, text, r.text[:500])
    if r.status >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        err = r.json()["error"]  # the one error shape
        assert err["code"] == r.status and isinstance(err["type"], str) and err["message"]
