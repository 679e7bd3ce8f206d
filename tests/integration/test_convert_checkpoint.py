"""clients/python/convert_checkpoint.py against a live trcd: a checkpoint in the original
PyTorch project's format (best_model.pt holding model_state_dict, config.json beside it) is
built from the parameter names of docs/model.md, converted, loaded into trcd, and
trcd's /v1/control answers are compared with a PyTorch forward pass written here from
model.md (within 1e-4); the original's later (a273222) exports of tests/data/v2 (single,
two_level, trm_style, feedback; either key spelling) convert and answer as their cases, a
TRC-written checkpoint exported as best_model.pt converts back to itself, and bad input is
refused with one line and nothing written. Needs Debian's python3-torch."""
import json
import struct
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONVERT = os.path.join(ROOT, "clients", "python", "convert_checkpoint.py")
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from trc_client import Client  # noqa: E402

# A small custom configuration (not a preset: the converter must carry every number).
S, M, T, D, H, BLOCKS, K, N, BOUND = 2, 1, 15, 32, 48, 2, 2, 3, 3.0


def original_state_dict(gen):
    """The original's state_dict for (S, M, T, D, H, BLOCKS): names of model.md, random values
    large enough that tanh and the clamp are exercised, small enough to stay informative."""
    U = T * M
    sd = {}

    def linear(name, i, o, scale=1.0):
        sd[name + ".weight"] = torch.randn(o, i, generator=gen) * scale / i ** 0.5
        sd[name + ".bias"] = torch.randn(o, generator=gen) * 0.1

    def norm(name, k):
        sd[name + ".weight"] = 1.0 + 0.2 * torch.randn(k, generator=gen)
        sd[name + ".bias"] = 0.1 * torch.randn(k, generator=gen)

    linear("state_encoder.encoder.0", 2 * S + 1, H)
    norm("state_encoder.encoder.2", H)
    linear("state_encoder.encoder.3", H, D)
    linear("error_encoder.encoder.0", S, H // 2)
    norm("error_encoder.encoder.2", H // 2)
    linear("error_encoder.encoder.3", H // 2, D)
    for i in range(BLOCKS):
        p = f"recursive_reasoning.reasoning_blocks.{i}."
        sd[p + "attention.in_proj_weight"] = torch.randn(3 * D, D, generator=gen) / D ** 0.5
        sd[p + "attention.in_proj_bias"] = torch.randn(3 * D, generator=gen) * 0.1
        linear(p + "attention.out_proj", D, D)
        norm(p + "norm1", D)
        linear(p + "ffn.0", D, H)
        linear(p + "ffn.3", H, D)
        norm(p + "norm2", D)
    linear("recursive_reasoning.control_embedding", U, D)
    linear("recursive_reasoning.error_embedding", 2, D)
    linear("initial_control_generator.decoder.0", D, H)
    norm("initial_control_generator.decoder.2", H)
    linear("initial_control_generator.decoder.3", H, U, scale=2.0)
    linear("control_decoder.decoder.0", D + U, H)
    norm("control_decoder.decoder.2", H)
    linear("control_decoder.decoder.3", H, U, scale=2.0)
    return sd


def forward(sd, x0, target):
    """model.md's forward pass in PyTorch, float64. x0, target: [B, S] -> controls [B, T*M]."""
    F = torch.nn.functional
    p = {k: v.double() for k, v in sd.items()}

    def lin(name, x):
        return x @ p[name + ".weight"].T + p[name + ".bias"]

    def ln(name, x):
        return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], eps=1e-5)

    x = torch.cat([x0, target, torch.ones(x0.shape[0], 1, dtype=torch.float64)], dim=1)
    z0 = lin("state_encoder.encoder.3", ln("state_encoder.encoder.2", F.silu(lin("state_encoder.encoder.0", x))))
    g = "initial_control_generator.decoder."
    u = BOUND * torch.tanh(lin(g + "3", ln(g + "2", F.silu(lin(g + "0", z0)))))
    for _ in range(K):
        z = z0 + lin("recursive_reasoning.control_embedding", u)
        for _ in range(N):
            for i in range(BLOCKS):
                b = f"recursive_reasoning.reasoning_blocks.{i}."
                z = z + z0
                w, c = p[b + "attention.in_proj_weight"], p[b + "attention.in_proj_bias"]
                v = z @ w[2 * D:].T + c[2 * D:]  # one token: attention is the value projection
                a = lin(b + "attention.out_proj", v)
                z = ln(b + "norm1", z + a)
                z = ln(b + "norm2", z + lin(b + "ffn.3", F.silu(lin(b + "ffn.0", z))))
        dname = "control_decoder.decoder."
        r = (BOUND / 2) * torch.tanh(lin(dname + "3", ln(dname + "2", F.silu(lin(dname + "0", torch.cat([z, u], dim=1))))))
        u = torch.clamp(u + r, -BOUND, BOUND)
    return u


def original_checkpoint(folder, sd):
    """best_model.pt and config.json exactly as the original's trainer writes them."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    torch.save({"epoch": 7, "model_state_dict": sd, "optimizer_state_dict": opt.state_dict(),
                "metrics": {"train_loss": 0.01, "val_loss": 0.02}, "best_metric": 0.02},
               os.path.join(folder, "best_model.pt"))
    config = {"state_dim": S, "control_dim": M, "control_horizon": T, "latent_dim": D,
              "hidden_dim": H, "num_reasoning_blocks": BLOCKS, "num_heads": 2, "use_attention": True,
              "num_outer_cycles": K, "num_inner_cycles": N, "use_two_level": False, "H_cycles": 3,
              "L_cycles": 4, "L_layers": 2, "use_gradient_truncation": False,
              "control_bounds": BOUND, "dropout": 0.0, "use_residual_decoder": True}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def convert(src, dst, *extra):
    return subprocess.run([sys.executable, CONVERT, src, "-o", dst, *extra],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def weights():
    return original_state_dict(torch.Generator().manual_seed(1234))


def test_converted_checkpoint_matches_pytorch(trcd, tmp_path, weights):
    original_checkpoint(str(tmp_path), weights)
    out = os.path.join(trcd.models_dir, "orig.safetensors")
    r = convert(str(tmp_path / "best_model.pt"), out, "--dt", "0.33")
    assert r.returncode == 0, r.stderr
    assert "custom" in r.stdout and f"K={K}" in r.stdout and "dt=0.33" in r.stdout

    c = Client(trcd.url, token=getattr(trcd, "token", None))
    info = c.load("orig", "orig.safetensors")
    cfg = info["config"]
    assert (cfg["s"], cfg["m"], cfg["T"], cfg["d"], cfg["h"], cfg["blocks"]) == (S, M, T, D, H, BLOCKS)
    assert (cfg["K"], cfg["n"], cfg["bound"]) == (K, N, BOUND)
    assert cfg["system"] == "double_integrator" and cfg["dt"] == 0.33

    gen = torch.Generator().manual_seed(7)
    x0 = (torch.rand(16, S, generator=gen, dtype=torch.float64) * 4 - 2)
    tg = (torch.rand(16, S, generator=gen, dtype=torch.float64) * 4 - 2)
    want = forward(weights, x0, tg).reshape(16, T, M)
    # The clamp must be active somewhere, or the test would not cover it.
    assert (want.abs() == BOUND).any()

    got = torch.tensor(c.control_batch(x0.tolist(), tg.tolist(), model="orig")["controls"], dtype=torch.float64)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() < 1e-4
    one = c.control(x0[3].tolist(), tg[3].tolist(), model="orig")["controls"]
    assert (torch.tensor(one, dtype=torch.float64) - want[3]).abs().max().item() < 1e-4


def test_bare_state_dict_and_flags(trcd, tmp_path, weights):
    """A .pt holding the state_dict itself (DataParallel prefixes), no config.json: shapes and
    flags give the configuration."""
    torch.save({"module." + k: v for k, v in weights.items()}, str(tmp_path / "bare.pt"))
    out = os.path.join(trcd.models_dir, "bare.safetensors")
    r = convert(str(tmp_path / "bare.pt"), out, "--bound", str(BOUND), "--K", str(K))
    assert r.returncode == 0, r.stderr
    # no --dt: none stamped (issue 14), the server's --dt (conftest) serves it
    assert "dt not recorded" in r.stdout
    with open(out, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        assert json.loads(f.read(n))["__metadata__"]["dt"] == "0.0"
    assert convert(str(tmp_path / "bare.pt"), out + ".x", "--dt", "-1").returncode != 0
    c = Client(trcd.url, token=getattr(trcd, "token", None))
    c.load("bare", "bare.safetensors")
    got = torch.tensor(c.control([1.0, 0.5], [0.0, 0.0], model="bare")["controls"], dtype=torch.float64)
    want = forward(weights, torch.tensor([[1.0, 0.5]], dtype=torch.float64),
                   torch.tensor([[0.0, 0.0]], dtype=torch.float64)).reshape(T, M)
    assert (got - want).abs().max().item() < 1e-4


@pytest.mark.parametrize("case", ["missing", "extra", "shape", "two_level", "config_mismatch"])
def test_refuses_what_is_not_the_network(tmp_path, weights, case):
    sd = dict(weights)
    config = {"state_dim": S, "control_dim": M, "control_horizon": T}
    if case == "missing":
        del sd["control_decoder.decoder.2.bias"]
    elif case == "extra":
        sd["value_predictor.weight"] = torch.zeros(3)
    elif case == "shape":
        sd["recursive_reasoning.error_embedding.weight"] = torch.zeros(D, 3)
    elif case == "two_level":
        config["use_two_level"] = True
    elif case == "config_mismatch":
        config["latent_dim"] = D * 2
    torch.save({"model_state_dict": sd}, str(tmp_path / "best_model.pt"))
    with open(tmp_path / "config.json", "w") as f:
        json.dump(config, f)
    out = tmp_path / "out.safetensors"
    r = convert(str(tmp_path / "best_model.pt"), str(out))
    assert r.returncode == 1
    expect = {"missing": "missing parameter 'control_decoder.decoder.2.bias'",
              "extra": "unexpected tensor 'value_predictor.weight'",
              "shape": "'recursive_reasoning.error_embedding.weight' has shape [32, 3], expected [32, 2]",
              "two_level": "use_two_level", "config_mismatch": "latent_dim=64"}[case]
    assert expect in r.stderr
    assert not out.exists()  # nothing half-written


class _RunsCode:
    """A pickled object whose loading would run a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused(tmp_path, weights):
    marker = tmp_path / "ran"
    torch.save({"model_state_dict": weights, "extra": _RunsCode(marker)}, str(tmp_path / "evil.pt"))
    r = convert(str(tmp_path / "evil.pt"), str(tmp_path / "x.safetensors"))
    assert r.returncode == 1 and "refusing to unpickle" in r.stderr and "--trust" in r.stderr
    assert not marker.exists()


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "best_model.pt"
    bad.write_bytes(b"this is not a pickle")
    r = convert(str(bad), str(tmp_path / "x.safetensors"))
    assert r.returncode == 1 and "not a readable PyTorch checkpoint" in r.stderr


# ---------------------------------------------------------------- the original's later version

V2 = os.path.join(os.environ.get("TRC_TEST_DATA", os.path.join(ROOT, "tests", "data")), "v2")
TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))


def v2_fixture(name):
    """(state_dict of the a273222 export, its case tensors) from tests/data/v2."""
    from safetensors_numpy import load
    params, _ = load(os.path.join(V2, name + ".safetensors"))
    case, meta = load(os.path.join(V2, name + ".case.safetensors"))
    return {k: torch.from_numpy(v.copy()) for k, v in params.items()}, case, meta


def respell(sd, names):
    """The same state_dict with the FFN keys spelled as `names` (ec6511d: ffn.0 / ffn.3)."""
    if names == "a273222":
        return dict(sd)
    return {k.replace(".ffn.fc_in.", ".ffn.0.").replace(".ffn.fc_out.", ".ffn.3."): v
            for k, v in sd.items()}


# every checkpoint the original's a273222 writes (the three architectures, feedback), read in
# either spelling and written in either
V2_CASES = [("single_small", "single", False, "ec6511d", "a273222"),
            ("single_small", "single", False, "a273222", "ec6511d"),
            ("two_level_small", "two_level", False, "a273222", "a273222"),
            ("two_level_small", "two_level", False, "ec6511d", "ec6511d"),
            ("trm_style_small", "trm_style", False, "ec6511d", "a273222"),
            ("trm_style_small", "trm_style", False, "a273222", "ec6511d"),
            ("two_level_small_fb", "two_level", True, "a273222", "a273222")]


@pytest.mark.parametrize("fixture, arch, feedback, spelled, names", V2_CASES)
def test_converts_every_later_checkpoint(trcd, tmp_path, fixture, arch, feedback, spelled, names):
    sd, case, meta = v2_fixture(fixture)
    torch.save({"epoch": 3, "model_state_dict": respell(sd, spelled)}, str(tmp_path / "best_model.pt"))
    two = arch != "single"
    config = {"state_dim": 2, "control_dim": 1, "control_horizon": 15, "latent_dim": 64,
              "hidden_dim": 256 if arch == "trm_style" else 128, "num_heads": 2,
              "use_two_level": two, "H_cycles": 3, "L_cycles": 4, "L_layers": 2,
              "num_reasoning_blocks": 2, "num_outer_cycles": 3, "num_inner_cycles": 3,
              "use_gradient_truncation": two, "control_bounds": 4.0, "use_residual_decoder": True}
    with open(tmp_path / "config.json", "w") as f:
        json.dump(config, f)
    name = f"{fixture}_{spelled}_{names}"
    out = os.path.join(trcd.models_dir, name + ".safetensors")
    r = convert(str(tmp_path / "best_model.pt"), out, "--names", names,
                *(["--feedback"] if feedback else []))
    assert r.returncode == 0, r.stderr
    from safetensors_numpy import load
    tensors, m = load(out)
    assert m["arch"] == arch and m["names"] == names and (m.get("feedback") == "true") == feedback
    assert set(tensors) == set(respell(sd, names))
    assert (m["K"], m["n"]) == (("3", "4") if two else ("3", "3"))
    c = Client(trcd.url, token=getattr(trcd, "token", None))
    c.load(name, name + ".safetensors")
    got = torch.tensor(c.control_batch(case["x0"].tolist(), case["target"].tolist(),
                                       model=name)["controls"], dtype=torch.float64)
    want = torch.from_numpy(case["iterates"][3].astype("float64")).reshape(8, 15, 1)
    assert (got - want).abs().max().item() < 1e-4


@pytest.mark.parametrize("arch", ["two_level", "trm_style"])
def test_round_trip_of_a_trc_checkpoint(tmp_path, arch):
    """A TRC-written checkpoint, exported as the original's best_model.pt (state_dict only), converts
    back to the same tensors and answers."""
    from safetensors_numpy import load
    data = tmp_path / "d.npz"
    subprocess.run([TRC_BIN, "generate", "--num-samples", "64", "--seed", "2", "--out", str(data)],
                   check=True, capture_output=True)
    run = tmp_path / "run"
    subprocess.run([TRC_BIN, "train", "--data", str(data), "--out", str(run), "--arch", arch,
                    "--model-size", "small", "--epochs", "1", "--threads", "1", "--feedback",
                    "--json"], check=True, capture_output=True)
    ours, meta = load(run / "best_model.safetensors")
    torch.save({"model_state_dict": {k: torch.from_numpy(v.copy()) for k, v in ours.items()}},
               str(tmp_path / "best_model.pt"))
    out = tmp_path / "back.safetensors"
    # the original's files record no time step: it is given, never assumed
    r = convert(str(tmp_path / "best_model.pt"), str(out), "--feedback", "--names", "ec6511d",
                "--dt", meta["dt"])
    assert r.returncode == 0, r.stderr
    back, m2 = load(out)
    for key in ("arch", "size", "s", "m", "T", "K", "n", "d", "h", "blocks", "system", "feedback",
                "dt"):
        assert m2[key] == meta[key], key
    assert {k.replace(".ffn.0.", ".ffn.fc_in.").replace(".ffn.3.", ".ffn.fc_out."): v
            for k, v in back.items()}.keys() == ours.keys()
    for k, v in back.items():
        k2 = k.replace(".ffn.0.", ".ffn.fc_in.").replace(".ffn.3.", ".ffn.fc_out.")
        assert (v == ours[k2]).all(), k

    def predict(ckpt):
        r = subprocess.run([TRC_BIN, "predict", "--checkpoint", str(ckpt), "--state", "1,0.5",
                            "--target", "0,0"], check=True, capture_output=True, text=True)
        return json.loads(r.stdout)["controls"]
    assert predict(out) == predict(run / "best_model.safetensors")


@pytest.mark.parametrize("case", ["K_zero", "n_zero", "feedback_single", "both_spellings",
                                  "use_two_level_false", "trm_missing_buffer"])
def test_refuses_bad_later_input(tmp_path, case):
    fixture = "single_small" if case in ("feedback_single",) else (
        "trm_style_small" if case == "trm_missing_buffer" else "two_level_small")
    sd, _, _ = v2_fixture(fixture)
    config, extra = {}, []
    if case == "K_zero":
        extra = ["--K", "0"]
    elif case == "n_zero":
        config["L_cycles"] = 0
    elif case == "feedback_single":
        extra = ["--feedback"]
    elif case == "both_spellings":
        k = "recursive_reasoning.L_level.layers.0.ffn.fc_in.bias"
        sd[k.replace("fc_in", "0")] = sd[k]
    elif case == "use_two_level_false":
        config["use_two_level"] = False
    elif case == "trm_missing_buffer":
        del sd["recursive_reasoning.L_init"]
    torch.save({"model_state_dict": sd}, str(tmp_path / "best_model.pt"))
    with open(tmp_path / "config.json", "w") as f:
        json.dump(config, f)
    out = tmp_path / "out.safetensors"
    r = convert(str(tmp_path / "best_model.pt"), str(out), *extra)
    assert r.returncode == 1, r.stdout
    expect = {"K_zero": "must be positive", "n_zero": "must be positive",
              "feedback_single": "--feedback needs", "both_spellings": "spelled both ways",
              "use_two_level_false": "use_two_level", "trm_missing_buffer": "L_init"}[case]
    assert expect in r.stderr and len(r.stderr.strip().split("\n")) == 1
    assert not out.exists()
