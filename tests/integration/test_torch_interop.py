"""A checkpoint that `trc train` writes loads into the original PyTorch module structure with
`load_state_dict(strict=True)`, and that module (with a real nn.MultiheadAttention over the
one-token latent) gives the controls `trc predict` gives. Needs Debian's python3-torch."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))
sys.path.insert(0, os.path.join(ROOT, "clients", "python"))
from safetensors_numpy import load  # noqa: E402


def mlp(i, h, o):
    # Indices 0 (Linear), 1 (SiLU), 2 (LayerNorm), 3 (Linear): the original's Sequential layout.
    return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.LayerNorm(h), nn.Linear(h, o))


class Coder(nn.Module):
    def __init__(self, attr, i, h, o):
        super().__init__()
        setattr(self, attr, mlp(i, h, o))


class Block(nn.Module):
    def __init__(self, d, h, heads):
        super().__init__()
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, h), nn.SiLU(), nn.Dropout(0.0), nn.Linear(h, d))
        self.norm2 = nn.LayerNorm(d)

    def forward(self, z):
        t = z.unsqueeze(1)  # one token
        a, _ = self.attention(t, t, t, need_weights=False)
        z = self.norm1(z + a.squeeze(1))
        return self.norm2(z + self.ffn(z))


class Reasoning(nn.Module):
    def __init__(self, d, h, blocks, heads, U):
        super().__init__()
        self.reasoning_blocks = nn.ModuleList(Block(d, h, heads) for _ in range(blocks))
        self.control_embedding = nn.Linear(U, d)
        self.error_embedding = nn.Linear(2, d)


class OriginalTRC(nn.Module):
    """The module structure whose state_dict keys are those of docs/model.md."""

    def __init__(self, s, m, T, d, h, blocks, heads, bound, K, n):
        super().__init__()
        U = T * m
        self.bound, self.K, self.n = bound, K, n
        self.state_encoder = Coder("encoder", 2 * s + 1, h, d)
        self.error_encoder = Coder("encoder", s, h // 2, d)
        self.recursive_reasoning = Reasoning(d, h, blocks, heads, U)
        self.initial_control_generator = Coder("decoder", d, h, U)
        self.control_decoder = Coder("decoder", d + U, h, U)

    def forward(self, x0, target):
        ones = torch.ones(x0.shape[0], 1, dtype=x0.dtype)
        z0 = self.state_encoder.encoder(torch.cat([x0, target, ones], dim=1))
        u = self.bound * torch.tanh(self.initial_control_generator.decoder(z0))
        rr = self.recursive_reasoning
        for _ in range(self.K):
            z = z0 + rr.control_embedding(u)
            for _ in range(self.n):
                for block in rr.reasoning_blocks:
                    z = block(z + z0)
            r = (self.bound / 2) * torch.tanh(self.control_decoder.decoder(torch.cat([z, u], 1)))
            u = torch.clamp(u + r, -self.bound, self.bound)
        return u


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("interop")
    data, out = d / "train.npz", d / "run"
    subprocess.run([TRC_BIN, "generate", "--num-samples", "256", "--seed", "3", "--out", str(data)],
                   check=True, capture_output=True)
    subprocess.run([TRC_BIN, "train", "--data", str(data), "--model-size", "small", "--epochs", "2",
                    "--threads", "1", "--out", str(out), "--json"], check=True, capture_output=True)
    return out / "best_model.safetensors"


def test_checkpoint_loads_into_the_original_module_and_agrees(checkpoint):
    tensors, meta = load(checkpoint)
    cfg = {k: meta[k] for k in ("s", "m", "T", "d", "h", "blocks", "heads", "K", "n")}
    cfg = {k: int(v) for k, v in cfg.items()}
    model = OriginalTRC(cfg["s"], cfg["m"], cfg["T"], cfg["d"], cfg["h"], cfg["blocks"],
                        cfg["heads"], float(meta["b"]), cfg["K"], cfg["n"])
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)  # every key, every shape: nothing missing or extra
    model.eval()

    rng = np.random.default_rng(7)
    for _ in range(4):
        x0, target = rng.uniform(-2, 2, 2), rng.uniform(-2, 2, 2)
        r = subprocess.run([TRC_BIN, "predict", "--checkpoint", str(checkpoint),
                            "--state", ",".join("%.9g" % v for v in x0),
                            "--target", ",".join("%.9g" % v for v in target)],
                           check=True, capture_output=True, text=True)
        ours = np.array(json.loads(r.stdout)["controls"]).reshape(-1)
        with torch.no_grad():
            theirs = model(torch.tensor(np.array([x0]), dtype=torch.float32),
                           torch.tensor(np.array([target]), dtype=torch.float32)).numpy().reshape(-1)
        assert np.max(np.abs(ours - theirs)) < 1e-4, (ours, theirs)
