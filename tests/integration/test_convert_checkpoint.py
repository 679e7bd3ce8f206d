"""clients/python/convert_checkpoint.py against a live trcd: a checkpoint in the original
PyTorch project's format (best_model.pt holding model_state_dict, config.json beside it) is
built from the parameter names of docs/model.md, converted, loaded into trcd, and
trcd's /v1/control answers are compared with a PyTorch forward pass written here from
model.md (within 1e-4). Needs Debian's python3-torch."""
import json
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
    r = convert(str(tmp_path / "best_model.pt"), out)
    assert r.returncode == 0, r.stderr
    assert "custom" in r.stdout and f"K={K}" in r.stdout

    c = Client(trcd.url, token=getattr(trcd, "token", None))
    info = c.load("orig", "orig.safetensors")
    cfg = info["config"]
    assert (cfg["s"], cfg["m"], cfg["T"], cfg["d"], cfg["h"], cfg["blocks"]) == (S, M, T, D, H, BLOCKS)
    assert (cfg["K"], cfg["n"], cfg["bound"]) == (K, N, BOUND)
    assert cfg["system"] == "double_integrator" and abs(cfg["dt"] - 1 / 3) < 1e-8

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
