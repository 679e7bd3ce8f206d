"""examples/expert_cost.c: builds against build/libtrc.a and measures the iLQR objective of a
model's open- and closed-loop controls; on an ilqr dataset its expert J equals the dataset's
costs."""
import os
import re
import subprocess

from conftest import ROOT

TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))
BUILD = os.path.dirname(TRC_BIN)
# a sanitized libtrc.a links with the sanitizers' flags too
SAN_FLAGS = (["-fsanitize=address,undefined"]
             if "SAN=1" in os.environ.get("MAKEFLAGS", "") or "asan" in BUILD else [])


def test_expert_cost_example(tmp_path):
    exe = tmp_path / "expert_cost"
    lib = os.path.join(BUILD, "libtrc.a")
    r = subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                        "-I" + os.path.join(ROOT, "core", "include"),
                        os.path.join(ROOT, "examples", "expert_cost.c"), lib, "-lopenblas",
                        "-ljansson", "-lzip", "-lm", "-lpthread", "-o", str(exe)] + SAN_FLAGS,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data, run = tmp_path / "vdp.npz", tmp_path / "run"
    subprocess.run([TRC_BIN, "generate", "--system", "van_der_pol", "--expert", "ilqr",
                    "--num-samples", "24", "--seed", "3", "--out", str(data)],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([TRC_BIN, "train", "--data", str(data), "--out", str(run), "--model-size",
                    "small", "--epochs", "1", "--batch-size", "8", "-K", "1", "-n", "1",
                    "--threads", "1"], check=True, capture_output=True, timeout=120)
    ckpt = str(run / "best_model.safetensors")
    r = subprocess.run([str(exe), ckpt, str(data)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    m = re.search(r"expert +([0-9.]+) \(the dataset's costs within ([0-9.e+-]+) relative\)",
                  r.stdout)
    assert m and float(m.group(2)) < 1e-5, r.stdout
    assert "closed loop" in r.stdout and "open loop" in r.stdout
    # other weights give another J for the same controls
    r2 = subprocess.run([str(exe), ckpt, str(data), "2", "0.1", "20"], capture_output=True,
                        text=True, timeout=120)
    assert r2.returncode == 0 and "Q = 2 diag" in r2.stdout, r2.stderr
    # bad input: a clear error, exit 1
    r = subprocess.run([str(exe), ckpt, str(tmp_path / "missing.npz")], capture_output=True,
                       text=True)
    assert r.returncode == 1 and "missing.npz" in r.stderr
