"""bf16 weights end to end (`trc predict --precision bf16`, `trcd --precision bf16`): on a CPU
with AVX512_BF16 the controls agree with fp32 within the accuracy bound test_infer_plan pins
(max |du| <= 2.5% of the control bound); on another CPU, or with the kernels forced to another
path (TRC_ISA=avx2), both refuse with one clear line. A bad precision name is a usage error."""
import json
import os
import subprocess

from conftest import ROOT, SMALL_RANDOM, TEST_DATA, TRCD_BIN

TRC = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))
TWO_LEVEL = os.path.join(TEST_DATA, "v2", "two_level_small.safetensors")
BOUND = 4.0


def cpu_has_bf16():
    with open("/proc/cpuinfo") as f:
        flags = next((l for l in f if l.startswith("flags")), "").split()
    return "avx512_bf16" in flags and "avx512f" in flags


def predict(precision, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([TRC, "predict", "--checkpoint", SMALL_RANDOM, "--state", "1,0",
                           "--target", "0,0", "--system", "double_integrator", "--dt", "0.1",
                           "--precision", precision], capture_output=True, text=True, env=e)


def test_predict_precision():
    ref = predict("fp32")
    assert ref.returncode == 0, ref.stderr
    u32 = [c[0] for c in json.loads(ref.stdout)["controls"]]
    bad = predict("fp16")
    assert bad.returncode == 2 and "fp32 or bf16" in bad.stderr
    forced = predict("bf16", {"TRC_ISA": "avx2"})
    assert forced.returncode == 1 and forced.stderr.count("\n") == 1
    assert "avx512 kernel path" in forced.stderr
    got = predict("bf16")
    if not cpu_has_bf16():
        assert got.returncode == 1 and "AVX512_BF16" in got.stderr
        return
    assert got.returncode == 0, got.stderr
    out = json.loads(got.stdout)
    assert out["model"]["precision"] == "bf16"
    u16 = [c[0] for c in out["controls"]]
    diff = max(abs(a - b) for a, b in zip(u16, u32))
    assert 0 < diff <= 0.025 * BOUND, diff  # rounded weights, yet within the bound


def test_trcd_precision(trcd_factory, tmp_path):
    if not cpu_has_bf16():
        r = subprocess.run([TRCD_BIN, "--precision", "bf16", "--models-dir", str(tmp_path)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "AVX512_BF16" in r.stderr
        return
    ref = trcd_factory(models={"default": SMALL_RANDOM})
    srv = trcd_factory(args=["--precision", "bf16"],
                       models={"default": SMALL_RANDOM, "two": TWO_LEVEL})
    assert "model weights in bf16" in srv.log()
    a = ref.control([1, 0], [0, 0])
    b = srv.control([1, 0], [0, 0])
    assert a.status == 200 and b.status == 200
    u32 = [c[0] for c in a.json()["controls"]]
    u16 = [c[0] for c in b.json()["controls"]]
    diff = max(abs(x - y) for x, y in zip(u16, u32))
    assert 0 < diff <= 0.025 * BOUND, diff
    # a two_level model has no bf16 plan: not loaded, and the log says why
    assert "single architecture only" in srv.log()
    assert srv.control([1, 0], [0, 0], model="two").status == 404


def test_trcd_precision_refused(tmp_path):
    env = dict(os.environ, TRC_ISA="avx2")
    r = subprocess.run([TRCD_BIN, "--precision", "bf16", "--models-dir", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode != 0 and "--precision bf16" in r.stderr
    r = subprocess.run([TRCD_BIN, "--precision", "half", "--models-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "fp32 or bf16" in r.stderr

