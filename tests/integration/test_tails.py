"""Tails and the time-left input end to end (issue 12's closed loop): `trc train --tails` makes a
model that reads the steps left (trc info, /v1/models say so), `trc predict --steps-left` and
POST /v1/control {"steps_left": L} plan the last L steps (and agree), `trc eval --closed-loop`
runs a shrinking horizon with it, and every refusal names the field: steps_left outside 1..T,
below T for a model trained without tails, tails with process supervision."""
import json
import os
import subprocess

import pytest

TRC = os.path.abspath(os.environ.get("TRC_BIN", "build/trc"))
DT = "0.3333333333333333"


def trc(*args):
    return subprocess.run([TRC, *args], capture_output=True, text=True, timeout=300)


def ok(*args):
    p = trc(*args)
    assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("tails")
    ok("generate", "--system", "double_integrator", "--num-samples", "96", "--seed", "4",
       "--out", str(d / "train.npz"))
    ok("generate", "--system", "double_integrator", "--num-samples", "8", "--seed", "5",
       "--out", str(d / "test.npz"))
    ok("train", "--data", str(d / "train.npz"), "--model-size", "small", "--epochs", "2",
       "--batch-size", "32", "--tails", "3", "--out", str(d / "tails"))
    ok("train", "--data", str(d / "train.npz"), "--model-size", "small", "--epochs", "1",
       "--batch-size", "32", "--out", str(d / "plain"))
    return d


def test_tails_make_a_model_that_reads_the_time_left(run):
    info = json.loads(ok("info", "--checkpoint", str(run / "tails/best_model.safetensors"),
                         "--json").stdout)
    assert info["config"]["time_left"] is True
    stats = json.loads((run / "tails/training_stats.json").read_text())
    assert json.dumps(stats).count('"tails": 3') >= 1  # a saved setting of the run
    plain = json.loads(ok("info", "--checkpoint", str(run / "plain/best_model.safetensors"),
                          "--json").stdout)
    assert plain["config"]["time_left"] is False
    # process supervision cannot score a tail (the others roll out the steps left)
    bad = trc("train", "--data", str(run / "train.npz"), "--tails", "2", "--objective",
              "process", "--out", str(run / "bad"))
    assert bad.returncode == 2 and "imitation, trajectory, mixed" in bad.stderr, bad.stderr
    assert not (run / "bad").exists()
    bad = trc("train", "--data", str(run / "train.npz"), "--tails", "-1", "--out", str(run / "b"))
    assert bad.returncode == 2 and "--tails" in bad.stderr, bad.stderr


def test_predict_plans_the_steps_left(run):
    ckpt = str(run / "tails/best_model.safetensors")
    full = json.loads(ok("predict", "--checkpoint", ckpt, "--state", "1,0.5", "--target", "0,0",
                         "--trajectory").stdout)
    assert len(full["controls"]) == 15 and len(full["trajectory"]) == 16
    part = json.loads(ok("predict", "--checkpoint", ckpt, "--state", "1,0.5", "--target", "0,0",
                         "--steps-left", "4", "--trajectory", "--iterations").stdout)
    assert len(part["controls"]) == 4 and len(part["trajectory"]) == 5
    assert all(len(it) == 4 for it in part["iterations"])
    assert part["controls"] != full["controls"][:4]  # another input, another answer
    same = json.loads(ok("predict", "--checkpoint", ckpt, "--state", "1,0.5", "--target", "0,0",
                         "--steps-left", "15").stdout)
    assert same["controls"] == full["controls"]
    for n, needle in (("16", "1..15"), ("0", "--steps-left")):
        p = trc("predict", "--checkpoint", ckpt, "--state", "1,0.5", "--target", "0,0",
                "--steps-left", n)
        assert p.returncode == 2 and needle in p.stderr, p.stderr
    p = trc("predict", "--checkpoint", str(run / "plain/best_model.safetensors"), "--state",
            "1,0.5", "--target", "0,0", "--steps-left", "4")
    assert p.returncode == 2 and "--tails" in p.stderr, p.stderr


def test_closed_loop_shrinks_the_horizon(run):
    out = run / "cl.json"
    ok("eval", "--checkpoint", str(run / "tails/best_model.safetensors"), "--data",
       str(run / "test.npz"), "--closed-loop", "--json", str(out))
    rows = json.loads(out.read_text())
    text = json.dumps(rows)
    assert '"horizon": "shrinking"' in text
    ok("eval", "--checkpoint", str(run / "plain/best_model.safetensors"), "--data",
       str(run / "test.npz"), "--closed-loop", "--json", str(out))
    assert '"horizon": "receding"' in json.dumps(json.loads(out.read_text()))


def test_trcd_plans_the_steps_left(run, trcd_factory):
    ckpt = str(run / "tails/best_model.safetensors")
    srv = trcd_factory(models={"tails": ckpt,
                               "plain": str(run / "plain/best_model.safetensors")})
    models = {m["name"]: m for m in srv.request("GET", "/v1/models").json()["models"]}
    assert models["tails"]["config"]["time_left"] is True
    assert models["plain"]["config"]["time_left"] is False
    want = json.loads(ok("predict", "--checkpoint", ckpt, "--state", "1,0.5", "--target", "0,0",
                         "--steps-left", "4").stdout)
    r = srv.control([1, 0.5], [0, 0], model="tails", steps_left=4,
                    **{"return": ["trajectory", "iterations"]})
    assert r.status == 200, r.json()
    body = r.json()
    assert len(body["controls"]) == 4 and len(body["trajectory"]) == 5
    assert all(len(it) == 4 for it in body["iterations"])
    flat = [v for row in want["controls"] for v in row]
    assert [v for row in body["controls"] for v in row] == pytest.approx(flat, rel=1e-5, abs=1e-6)
    assert body["final_error"] == pytest.approx(want["final_error"], rel=1e-5)
    # a batch: every row the same steps left
    b = srv.request("POST", "/v1/control", json={"model": "tails", "states": [[1, 0.5], [0, 1]],
                                                 "targets": [[0, 0], [0, 0]], "steps_left": 4})
    assert b.status == 200 and [len(c) for c in b.json()["controls"]] == [4, 4]
    assert b.json()["controls"][0] == body["controls"]
    # refusals name the field
    for model, steps, needle in (("tails", 16, "1..15"), ("tails", 0, "between 1"),
                                 ("tails", 2.5, "integer"), ("plain", 4, "tails")):
        r = srv.control([1, 0.5], [0, 0], model=model, steps_left=steps)
        assert r.status == 400, r.json()
        assert r.json()["error"]["param"] == "steps_left", r.json()
        assert needle in r.json()["error"]["message"], r.json()
    # the whole horizon is every model's answer
    assert srv.control([1, 0.5], [0, 0], model="plain", steps_left=15).status == 200


def test_train_job_with_tails(trcd_factory):
    """POST /v1/train {"tails": 2}: the job's model reads the time left and answers steps_left."""
    import time
    srv = trcd_factory()
    r = srv.request("POST", "/v1/train", json={
        "system": "double_integrator", "num_samples": 48, "epochs": 1, "model_size": "small",
        "batch_size": 16, "tails": 2, "name": "shrinking"})
    assert r.status == 202, r.json()
    job_id = r.json()["job_id"]
    deadline = time.time() + 300  # a bound on a hang, not a race: the job ends long before
    while time.time() < deadline:
        job = srv.request("GET", "/v1/jobs/" + job_id).json()
        if job["terminal"]:
            break
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    assert job["spec"]["tails"] == 2
    assert srv.request("GET", "/v1/models/shrinking").json()["config"]["time_left"] is True
    a = srv.control([1, 0.5], [0, 0], model="shrinking", steps_left=3)
    assert a.status == 200 and len(a.json()["controls"]) == 3
    bad = srv.request("POST", "/v1/train", json={"system": "double_integrator", "tails": 2,
                                                  "objective": "process"})
    assert bad.status == 400 and "imitation, trajectory, mixed" in bad.json()["error"]["message"], \
        bad.json()


def test_closed_loop_example_shrinks_the_horizon(run, tmp_path):
    """examples/closed_loop.c with a model trained with tails: at step t it asks for the T - t
    steps left, so its control at step 5 is `trc predict --steps-left 10` from the state it
    reached; more steps than one horizon are refused."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    exe = tmp_path / "closed_loop"
    libs = ["-lopenblas", "-ljansson", "-lzip", "-lm", "-lpthread"]
    lib = os.path.join(os.path.dirname(TRC), "libtrc.a")
    with open(lib, "rb") as f:  # the sanitized build (make asan) links with its runtime
        if b"__asan_" in f.read():
            libs += ["-fsanitize=address,undefined"]
    r = subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-I" + os.path.join(root, "core/include"),
                        os.path.join(root, "examples/closed_loop.c"),
                        lib, "-o", str(exe)] + libs,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ckpt = str(run / "tails/best_model.safetensors")
    p = subprocess.run([str(exe), ckpt, "1,0.5", "15"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "shrinking horizon" in lines[0] and len(lines) == 17, p.stdout
    x5 = lines[5].split()[5:]  # "step 4 u0 U x X0 X1": the state after 5 steps
    want = json.loads(ok("predict", "--checkpoint", ckpt, "--state", ",".join(x5), "--target",
                         "0,0", "--steps-left", "10").stdout)
    assert float(lines[6].split()[3]) == pytest.approx(want["controls"][0][0], rel=1e-5, abs=1e-6)
    p = subprocess.run([str(exe), ckpt, "1,0.5", "16"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0 and "STEPS <= 15" in p.stderr, p.stderr


def test_dagger_round(run):
    """trc dagger writes the problems, their tails and the closed loop's labelled states; trc
    train --init fine-tunes on them (a time-left model: the data carry steps_left); refusals."""
    ckpt = str(run / "tails/best_model.safetensors")
    out = run / "round.npz"
    p = ok("dagger", "--checkpoint", ckpt, "--data", str(run / "train.npz"), "--out", str(out),
           "--per-sample", "2", "--tails", "1", "--threads", "2")
    import re
    m = re.search(r"wrote .*: (\d+) rows \(96 problems, 96 tails, (\d+) visited states labelled "
                  r"by min_energy; (\d+) left out", p.stdout)
    assert m, p.stdout
    rows, labelled, left_out = map(int, m.groups())
    # two states a problem; min_energy cannot plan 1 step of a 2-D target: those are left out
    assert labelled + left_out == 192 and rows == 192 + labelled and left_out < 96, p.stdout
    import numpy as np
    with np.load(out) as z:
        left = z["steps_left"]
        # each problem then its tail, then the labelled states
        assert left.shape == (rows,) and (left[0:192:2] == 15).all() and (left[1:192:2] < 15).all()
        assert (left[192:] >= 2).all() and (left[192:] < 15).all()
        assert "state_trajectories" not in z.files
    ok("train", "--data", str(out), "--model-size", "small", "--epochs", "1", "--batch-size",
       "32", "--init", ckpt, "--out", str(run / "round"))
    # the next round keeps what the earlier one taught: its tails and labelled states
    nxt = run / "round2.npz"
    p = ok("dagger", "--checkpoint", str(run / "round/best_model.safetensors"), "--data",
           str(run / "train.npz"), "--out", str(nxt), "--tails", "0", "--aggregate", str(out))
    m = re.search(r": (\d+) rows \(96 problems, 0 tails, (\d+) visited .* (\d+) rows of earlier "
                  r"rounds\)", p.stdout)
    assert m, p.stdout
    total, labelled2, kept = map(int, m.groups())
    assert kept == 96 + labelled and total == 96 + labelled2 + kept, p.stdout
    with np.load(nxt) as z:
        earlier = np.concatenate([left[1:192:2], left[192:]])  # round 1's tails, then its states
        assert (z["steps_left"][-kept:] == earlier).all()
    info = json.loads(ok("info", "--checkpoint", str(run / "round/best_model.safetensors"),
                         "--json").stdout)
    assert info["config"]["time_left"] is True
    bad = trc("eval", "--checkpoint", ckpt, "--data", str(out))
    assert bad.returncode != 0 and "tails" in bad.stderr, bad.stderr
    train = str(run / "train.npz")
    for args, needle in ((["--checkpoint", str(run / "plain/best_model.safetensors"), "--data",
                           train], "--tails"),
                         (["--checkpoint", ckpt, "--per-sample", "0", "--data", train],
                          "--per-sample"),
                         (["--checkpoint", ckpt, "--data", str(out)], "tails")):
        a = ["dagger", "--out", str(run / "x.npz")] + args
        p = trc(*a)
        assert p.returncode != 0 and needle in p.stderr, (args, p.stderr)
    assert not (run / "x.npz").exists()
