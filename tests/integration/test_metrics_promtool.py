"""trcd's /metrics passes Prometheus's own checker, `promtool check metrics` (Debian package
prometheus, installed by scripts/install-deps.sh): the exposition format and its lint rules
(HELP and TYPE for every family, counter names ending _total, base units), after traffic that
fills every family: good, bad and unknown requests, and a finished training job."""
import shutil
import subprocess
import time

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def test_promtool_is_a_real_check():
    rc, out = promtool("# HELP a_total A counter.\n# TYPE a_total counter\na_total 1\n")
    assert rc == 0, out
    rc, out = promtool("request_seconds 2\n")  # no HELP/TYPE
    assert rc != 0 and "no help text" in out, out


def test_metrics_pass_promtool(trcd):
    assert trcd.control([1, 0.5], [0, 0]).status == 200
    assert trcd.request("POST", "/v1/control", json={"state": [1]}).status == 400
    assert trcd.request("GET", "/v1/nope").status == 404
    r = trcd.request("POST", "/v1/train", json={"name": "promjob", "num_samples": 32, "epochs": 1,
                                                "model_size": "small", "batch_size": 16})
    assert r.status == 202, r.text
    job = r.json()["job_id"]
    deadline = time.time() + 300
    while time.time() < deadline:
        st = trcd.request("GET", "/v1/jobs/" + job).json()
        if st["terminal"]:
            break
        time.sleep(0.1)
    assert st["status"] == "succeeded", st
    text = trcd.metrics()
    for family in ("trcd_http_requests_total", "trcd_http_request_duration_seconds",
                   "trcd_models_loaded", "trcd_jobs"):
        assert "# TYPE %s " % family in text, family
    rc, out = promtool(text)
    assert rc == 0, "promtool check metrics failed:\n%s\n--- /metrics ---\n%s" % (out, text[:4000])
