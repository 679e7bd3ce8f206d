"""The lean PyTorch reference of the TRC network, measured on this machine for `make bench`.

The same network as shared/docs/model.md (and tests/integration/test_torch_interop.py), written
lean: plain nn.Linear/LayerNorm/SiLU modules, and the attention of a one-token latent as what it
computes (softmax over one key is 1, so attention(z) = out_proj(V z + v)), so PyTorch does no
work ours skips. Measures, on `--threads` threads (OMP/OpenBLAS/MKL pinned to that count before
torch loads, and torch.set_num_threads): training steps at batch 64 (forward, MSE, backward),
single-sample inference latency and batch-1000 inference, each a median, wall and per
CPU-second. Prints one `key value...` line per figure (bench_model.c reads them).

    OPENBLAS_NUM_THREADS=1 python3 tests/bench/peer_torch.py --threads 1
"""
import argparse
import os
import sys
import time


SIZES = {"small": (64, 128, 2), "medium": (128, 256, 3), "large": (256, 512, 4)}


def build_model(torch, size="medium", s=2, m=1, T=15, K=3, n=3, bound=4.0):
    """The lean module (random init: speed does not depend on the weights)."""
    nn = torch.nn
    d, h, blocks = SIZES[size]
    U = m * T

    def mlp(i, o):
        return nn.Sequential(nn.Linear(i, h), nn.SiLU(), nn.LayerNorm(h), nn.Linear(h, o))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.value, self.out = nn.Linear(d, d), nn.Linear(d, d)
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.ffn = nn.Sequential(nn.Linear(d, h), nn.SiLU(), nn.Linear(h, d))

        def forward(self, z):
            z = self.norm1(z + self.out(self.value(z)))
            return self.norm2(z + self.ffn(z))

    class LeanTRC(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.gen, self.dec = mlp(2 * s + 1, d), mlp(d, U), mlp(d + U, U)
            self.blocks = nn.ModuleList(Block() for _ in range(blocks))
            self.ctrl = nn.Linear(U, d)

        def forward(self, x0, target):
            ones = torch.ones(x0.shape[0], 1)
            z0 = self.enc(torch.cat([x0, target, ones], 1))
            u = bound * torch.tanh(self.gen(z0))
            for _ in range(K):
                z = z0 + self.ctrl(u)
                for _ in range(n):
                    for b in self.blocks:
                        z = b(z + z0)
                r = (bound / 2) * torch.tanh(self.dec(torch.cat([z, u], 1)))
                u = torch.clamp(u + r, -bound, bound)
            return u

    return LeanTRC()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    try:
        import torch
    except ImportError:
        print("unavailable torch is not installed")
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    s, U = 2, 15
    model = build_model(torch, args.size)
    x0, tg = torch.rand(1000, s) * 4 - 2, torch.rand(1000, s) - 0.5
    ue = torch.rand(1000, U) * 8 - 4

    def rates(fn, count, reps):
        fn()
        wall, cpu = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(count / (time.perf_counter() - t0))
            cpu.append(count / (time.process_time() - c0))
        return sorted(wall)[reps // 2], sorted(cpu)[reps // 2]

    def train_steps():
        for i in range(5):
            lo = 64 * i
            model.zero_grad(set_to_none=True)
            loss = torch.mean((model(x0[lo:lo + 64], tg[lo:lo + 64]) - ue[lo:lo + 64]) ** 2)
            loss.backward()

    w, c = rates(train_steps, 5 * 64, 7)
    print("train_b64 %.1f %.1f" % (w, c))
    with torch.inference_mode():
        lat = []
        for i in range(201):
            t0 = time.perf_counter()
            model(x0[i:i + 1], tg[i:i + 1])
            lat.append((time.perf_counter() - t0) * 1e3)
        print("latency_ms %.4f" % sorted(lat)[len(lat) // 2])
        w, c = rates(lambda: model(x0, tg), 1000, 7)
        print("infer_b1000 %.1f %.1f" % (w, c))
    print("torch %s threads %d" % (torch.__version__, torch.get_num_threads()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
