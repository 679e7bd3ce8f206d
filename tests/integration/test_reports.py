"""What `trc eval` and `trc compare` report beyond errors: speed (the model's inference time per
problem, the expert's solve time per problem, re-measured in the run), the model's peak memory,
in text and JSON; and the SVG figures of --plot DIR, checked structurally (valid XML, one panel
per case and component, one line per row and case, the labels)."""
import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))
DATA = os.path.abspath(os.environ.get("TRC_TEST_DATA", os.path.join(ROOT, "tests", "data")))
MODEL = os.path.join(DATA, "small_init.safetensors")  # double integrator shape: s=2, m=1, T=15, K=3
NS = "{http://www.w3.org/2000/svg}"


def trc(*args, ok=True):
    r = subprocess.run([TRC_BIN, *map(str, args)], capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("reports")
    trc("generate", "--num-samples", 50, "--seed", 9, "--out", d / "test.npz")
    return d


def svg(path):
    root = ET.parse(path).getroot()  # raises on malformed XML
    assert root.tag == NS + "svg"
    return root


def all_of(root, tag, cls=None):
    return [e for e in root.iter(NS + tag) if cls is None or e.get("class") == cls]


def texts(root):
    return [e.text or "" for e in root.iter(NS + "text")]


def points(e):
    return [tuple(map(float, p.split(","))) for p in e.get("points").split()]


def test_compare_reports_speed_memory_and_plots(data, tmp_path):
    out = trc("compare", "--checkpoint", MODEL, "--data", data / "test.npz", "--json",
              tmp_path / "c.json", "--plot", tmp_path / "plots", "--timing-samples", 20).stdout
    assert "speed and memory" in out
    assert "ms per problem (median of 20 solves here" in out  # the expert, re-solved here
    assert "ms per problem (median of 20 calls of one problem" in out
    assert "MiB peak (VmHWM growth" in out or "MiB peak (ru_maxrss growth" in out
    rep = json.load(open(tmp_path / "c.json"))
    model, expert = rep["results"]["model"], rep["results"]["expert"]
    assert model["inference_calls_timed"] == 20 and model["inference_ms_per_problem"] > 0
    assert model["inference_ms_per_problem_batched"] > 0 and model["inference_batch"] == 50
    assert model["parameter_bytes"] == 4 * model["parameters"]
    # the loaded weights are held (null where mallinfo2 cannot see the allocator: ASan builds)
    assert model["model_heap_bytes"] is None or model["model_heap_bytes"] >= model["parameter_bytes"]
    assert model["peak_memory_bytes"] > 0 and model["peak_memory_method"]
    assert expert["solves_timed"] == 20 and expert["solve_ms_per_problem_measured"] > 0
    names = sorted(os.listdir(tmp_path / "plots"))
    assert names == ["final_error_hist.svg", "phase_portrait.svg", "refinement.svg",
                     "trajectories.svg"]
    assert "plots in" in out and "refinement.svg" in out

    # trajectories: 3 cases x (2 states + 1 control) panels, one line per drawn row and panel;
    # the random baseline is left out (its scale would hide the others)
    t = svg(tmp_path / "plots" / "trajectories.svg")
    panels = all_of(t, "g", "panel")
    assert len(panels) == 9
    assert {p.get("id") for p in panels} == {f"case{c}-{k}" for c in range(3) for k in ("x1", "x2", "u1")}
    for row in ("model", "expert"):
        lines = all_of(t, "polyline", "series-" + row)
        assert len(lines) == 9
        assert all(len(points(e)) >= 15 for e in lines)  # T = 15 steps
    assert not all_of(t, "polyline", "series-random")
    assert "case 0: x1: position" in texts(t) and "case 2: control u1" in texts(t)

    # histogram: one outline per row, the threshold marked, success rates in the legend
    h = svg(tmp_path / "plots" / "final_error_hist.svg")
    for row in ("random", "expert", "model"):
        (g,) = all_of(h, "g", "hist-" + row)
        assert len(all_of(g, "path")) == 1
    labels = texts(h)
    assert any(s.startswith("expert (100.0% < ") for s in labels)
    assert any(s.startswith("success threshold") for s in labels)

    # refinement: K + 1 iterates (initial guess, then each of the K = 3 outer cycles)
    r = svg(tmp_path / "plots" / "refinement.svg")
    assert len(points(all_of(r, "polyline", "series-mean")[0])) == 4
    assert len(all_of(r, "text", "success")) == 4 and len(all_of(r, "circle")) == 4
    assert "expert (mean)" in texts(r)

    # phase portrait (2 states): 8 cases per row, a start dot and a target cross per case
    p = svg(tmp_path / "plots" / "phase_portrait.svg")
    assert len(all_of(p, "polyline", "series-model")) == 8
    assert len(all_of(p, "polyline", "series-expert")) == 8
    assert len(all_of(p, "circle")) == 8
    assert len([e for e in all_of(p, "path") if e.get("stroke") == "#2ca02c"]) == 8
    assert "target (cross)" in texts(p)


def test_eval_reports_model_speed_and_plots(data, tmp_path):
    out = trc("eval", "--checkpoint", MODEL, "--data", data / "test.npz", "--json",
              tmp_path / "e.json", "--plot", tmp_path / "p").stdout
    assert "model inference" in out and "model memory" in out
    assert "expert (" not in out.split("speed and memory")[1]  # eval does not re-solve
    m = json.load(open(tmp_path / "e.json"))["results"]["model"]
    assert m["inference_calls_timed"] == 50 and m["peak_memory_bytes"] > 0
    t = svg(tmp_path / "p" / "trajectories.svg")
    assert len(all_of(t, "polyline", "series-model")) == 9
    assert len(all_of(t, "polyline", "series-expert")) == 9  # the dataset's controls
    assert os.path.exists(tmp_path / "p" / "refinement.svg")


def test_eval_without_model_plots_the_dataset(data, tmp_path):
    out = trc("eval", "--data", data / "test.npz", "--plot", tmp_path / "p").stdout
    assert "speed and memory" not in out
    assert sorted(os.listdir(tmp_path / "p")) == ["final_error_hist.svg", "phase_portrait.svg",
                                                   "trajectories.svg"]  # no model: no refinement
    t = svg(tmp_path / "p" / "trajectories.svg")
    assert len(all_of(t, "polyline", "series-dataset")) == 9


def test_plots_of_a_system_with_more_states(tmp_path):
    """rocket_landing: 7 states, 3 controls: four state panels per case, no phase portrait."""
    trc("generate", "--system", "rocket_landing", "--expert", "lqr_finite", "--num-samples", 5,
        "--seed", 1, "--out", tmp_path / "r.npz")
    trc("compare", "--data", tmp_path / "r.npz", "--plot", tmp_path / "p", "--timing-samples", 3)
    assert sorted(os.listdir(tmp_path / "p")) == ["final_error_hist.svg", "trajectories.svg"]
    t = svg(tmp_path / "p" / "trajectories.svg")
    assert len(all_of(t, "g", "panel")) == 3 * 5


def test_plot_dir_that_is_a_file_is_refused(data, tmp_path):
    (tmp_path / "f").write_text("x")
    r = trc("eval", "--data", data / "test.npz", "--plot", tmp_path / "f", ok=False)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_timing_samples_flag_is_checked(data):
    r = trc("compare", "--data", data / "test.npz", "--timing-samples", -1, ok=False)
    assert r.returncode == 2 and "--timing-samples" in r.stderr
