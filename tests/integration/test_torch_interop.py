"""A checkpoint that `trc train` writes loads into an independent PyTorch module built from the
specifications (docs/model.md; shared/docs/model-v2.md for two_level, trm_style and trajectory
feedback) with `load_state_dict(strict=True)`, and that module (a real nn.MultiheadAttention
over the one-token latent) gives the controls `trc predict` gives. Every architecture, both key
spellings (ec6511d: ffn.0 / ffn.3 of a Sequential with Dropout; a273222: ffn.fc_in / ffn.fc_out),
with and without feedback. Needs Debian's python3-torch."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

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


class RMSNorm(nn.Module):
    """model-v2.md section 3: weight only, eps inside the root, no mean removal."""

    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


class FFN(nn.Module):
    """a273222's FFN: fc_in, fc_out; SwiGLU: fc_in gives [gate ; value] (gate first)."""

    def __init__(self, d, width, swiglu):
        super().__init__()
        self.swiglu = swiglu
        self.fc_in = nn.Linear(d, 2 * width if swiglu else width)
        self.fc_out = nn.Linear(width, d)

    def forward(self, z):
        a = self.fc_in(z)
        if self.swiglu:
            g, q = a.chunk(2, dim=-1)
            return self.fc_out(F.silu(g) * q)
        return self.fc_out(F.silu(a))


class Block(nn.Module):
    def __init__(self, d, width, heads, names="a273222", rms=False):
        super().__init__()
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm1 = RMSNorm(d) if rms else nn.LayerNorm(d)
        self.ffn = FFN(d, width, swiglu=rms)
        if names == "ec6511d":  # the Dropout(0) between the Linears gives index 3
            self.ffn = nn.Sequential(self.ffn.fc_in, nn.SiLU(), nn.Dropout(0.0), self.ffn.fc_out)
            self.ffn_call = FFN(d, width, swiglu=rms)
            self.ffn_call.fc_in, self.ffn_call.fc_out = self.ffn[0], self.ffn[3]
            object.__setattr__(self, "ffn_fn", self.ffn_call.forward)  # not a submodule
            del self._modules["ffn_call"]
        else:
            object.__setattr__(self, "ffn_fn", self.ffn.forward)
        self.norm2 = RMSNorm(d) if rms else nn.LayerNorm(d)

    def forward(self, z):  # post-norm: norm(z + f(z))
        t = z.unsqueeze(1)  # one token
        a, _ = self.attention(t, t, t, need_weights=False)
        z = self.norm1(z + a.squeeze(1))
        return self.norm2(z + self.ffn_fn(z))


class Reasoning(nn.Module):
    def __init__(self, d, h, blocks, heads, U, names):
        super().__init__()
        self.reasoning_blocks = nn.ModuleList(Block(d, h, heads, names) for _ in range(blocks))
        self.control_embedding = nn.Linear(U, d)
        self.error_embedding = nn.Linear(2, d)


class Layers(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.layers = nn.ModuleList(blocks)


class TwoLevelReasoning(nn.Module):
    def __init__(self, d, width, layers, heads, U, names, trm):
        super().__init__()
        if trm:  # fixed initial states: buffers (in the state_dict, not parameters)
            self.register_buffer("H_init", torch.zeros(d))
            self.register_buffer("L_init", torch.zeros(d))
        else:
            self.H_init = nn.Parameter(torch.zeros(d))
            self.L_init = nn.Parameter(torch.zeros(d))
        self.L_level = Layers(Block(d, width, heads, names, rms=trm) for _ in range(layers))
        self.control_embedding = nn.Linear(U, d)
        self.error_embedding = nn.Linear(2, d)


def double_integrator_xT(x0, u, dt):
    """Exact ZOH double integrator: the final state after the T controls u [B, T]."""
    p, v = x0[:, 0], x0[:, 1]
    for t in range(u.shape[1]):
        p, v = p + v * dt + 0.5 * u[:, t] * dt * dt, v + u[:, t] * dt
    return torch.stack([p, v], dim=1)


class IndependentTRC(nn.Module):
    """The module structure whose state_dict keys are those of the specifications."""

    def __init__(self, meta, names):
        super().__init__()
        g = {k: int(meta[k]) for k in ("s", "m", "T", "d", "h", "blocks", "heads", "K", "n")}
        s, d, h, U = g["s"], g["d"], g["h"], g["T"] * g["m"]
        self.arch = meta.get("arch", "single")
        self.bound, self.K, self.n = float(meta["b"]), g["K"], g["n"]
        self.feedback = meta.get("feedback") == "true"
        self.dt = float(meta["dt"])
        self.state_encoder = Coder("encoder", 2 * s + 1, h, d)
        self.error_encoder = Coder("encoder", s, h // 2, d)
        if self.arch == "single":
            self.recursive_reasoning = Reasoning(d, h, g["blocks"], g["heads"], U, names)
        else:
            width = int(d * (h / d))  # the original's width rule (= h)
            self.recursive_reasoning = TwoLevelReasoning(d, width, g["blocks"], g["heads"], U,
                                                         names, self.arch == "trm_style")
        self.initial_control_generator = Coder("decoder", d, h, U)
        self.control_decoder = Coder("decoder", d + U, h, U)

    def refine(self, z, u):
        r = (self.bound / 2) * torch.tanh(self.control_decoder.decoder(torch.cat([z, u], 1)))
        return torch.clamp(u + r, -self.bound, self.bound)

    def forward(self, x0, target):
        ones = torch.ones(x0.shape[0], 1, dtype=x0.dtype)
        z0 = self.state_encoder.encoder(torch.cat([x0, target, ones], dim=1))
        u = self.bound * torch.tanh(self.initial_control_generator.decoder(z0))
        rr = self.recursive_reasoning
        if self.arch == "single":
            for _ in range(self.K):
                z = z0 + rr.control_embedding(u)
                for _ in range(self.n):
                    for block in rr.reasoning_blocks:
                        z = block(z + z0)
                u = self.refine(z, u)
            return u

        def lmod(hidden, inj):
            z = hidden + inj
            for block in rr.L_level.layers:
                z = block(z)
            return z

        zH = rr.H_init.expand(x0.shape[0], -1)
        zL = rr.L_init.expand(x0.shape[0], -1)
        for _ in range(self.K):  # H cycles
            c = rr.control_embedding(u)
            if self.feedback:
                c = c + rr.error_embedding(double_integrator_xT(x0, u, self.dt) - target)
            for _ in range(self.n):  # L cycles
                zL = lmod(zL, (zH + z0) + c)
            zH = lmod(zH, zL)
            u = self.refine(zH, u)
        return u


# (arch, feedback, names): every kind of checkpoint TRC writes
KINDS = [("single", False, "ec6511d"), ("single", False, "a273222"),
         ("two_level", False, "a273222"), ("two_level", True, "a273222"),
         ("two_level", True, "ec6511d"), ("trm_style", False, "a273222"),
         ("trm_style", True, "a273222"), ("trm_style", False, "ec6511d")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("interop")
    subprocess.run([TRC_BIN, "generate", "--num-samples", "128", "--seed", "3", "--out",
                    str(d / "train.npz")], check=True, capture_output=True)
    return d


@pytest.mark.parametrize("arch, feedback, names", KINDS)
def test_checkpoint_loads_into_an_independent_module_and_agrees(arch, feedback, names, data):
    out = data / f"{arch}_{int(feedback)}_{names}"
    subprocess.run([TRC_BIN, "train", "--data", str(data / "train.npz"), "--model-size", "small",
                    "--arch", arch, "--names", names, "--epochs", "2", "--threads", "1",
                    "--out", str(out), "--json"] + (["--feedback"] if feedback else []),
                   check=True, capture_output=True)
    checkpoint = out / "best_model.safetensors"
    tensors, meta = load(checkpoint)
    assert meta["arch"] == arch and meta["names"] == names
    assert (meta.get("feedback") == "true") == feedback
    model = IndependentTRC(meta, names)
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)  # every key, every shape: nothing missing or extra
    model.eval()

    rng = np.random.default_rng(7)
    for _ in range(3):
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
