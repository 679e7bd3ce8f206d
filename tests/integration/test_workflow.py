"""scripts/workflow.sh end to end with tiny sizes: the --system/--expert form trains into
outputs/<system>_<arch>_<size>/, the original's positional form into outputs/supervised_<size>/,
and both leave the seed's reports (evaluation_results.json, comparison_results.json) beside
training_curves.svg and the figures."""
import json
import os
import subprocess
import xml.etree.ElementTree as ET

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))
SCRIPT = os.path.join(ROOT, "scripts", "workflow.sh")


def run(tmp_path, *args, n_test="40"):
    env = dict(os.environ, TRC_BIN=TRC_BIN, N_TEST=n_test, THREADS="1")
    env.pop("OUT", None)
    return subprocess.run(["sh", SCRIPT, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)


def check_outputs(out, system, n_test, plots):
    for f in ("best_model.safetensors", "training_curves.svg", "training_stats.json",
              "train_log.jsonl", "evaluation_results.json", "comparison_results.json",
              "data/train.npz", "data/test.npz"):
        assert (out / f).exists(), f
    ev = json.load(open(out / "evaluation_results.json"))
    cmp = json.load(open(out / "comparison_results.json"))
    assert ev["command"] == "eval" and cmp["command"] == "compare"
    assert ev["system"] == system == cmp["system"] and ev["num_samples"] == n_test
    assert set(cmp["results"]) == {"random", "expert", "model"}
    model = cmp["results"]["model"]
    assert model["inference_ms_per_problem"] > 0 and model["peak_memory_bytes"] > 0
    assert cmp["results"]["expert"]["solve_ms_per_problem_measured"] > 0
    assert sorted(os.listdir(out / "plots")) == sorted(plots)
    for p in plots:
        ET.parse(out / "plots" / p)
    ET.parse(out / "training_curves.svg")


def test_system_and_expert_form(tmp_path):
    r = run(tmp_path, "--system", "van_der_pol", "--expert", "ilqr", "--size", "small",
            "--samples", "150", "--epochs", "2")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    out = tmp_path / "outputs" / "van_der_pol_single_small"
    check_outputs(out, "van_der_pol", 40, ["final_error_hist.svg", "phase_portrait.svg",
                                           "refinement.svg", "trajectories.svg"])
    assert json.load(open(out / "training_stats.json"))["settings"]["epochs"] == 2


def test_original_positional_form(tmp_path):
    r = run(tmp_path, "200", "2", "small", n_test="30")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    check_outputs(tmp_path / "outputs" / "supervised_small", "double_integrator", 30,
                  ["final_error_hist.svg", "phase_portrait.svg", "refinement.svg",
                   "trajectories.svg"])


def test_bad_arguments_are_refused(tmp_path):
    for args in (["--system"], ["--expert", "ilqr"], ["--system", "van_der_pol", "--bogus", "1"],
                 ["--system", "van_der_pol", "--samples", "ten"], ["1", "2", "3", "4"]):
        r = run(tmp_path, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert "workflow.sh" in r.stderr or "usage" in r.stderr.lower()
    assert not (tmp_path / "outputs").exists()
