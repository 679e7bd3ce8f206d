#!/usr/bin/python3
"""Writes tests/data/original_v2_double_integrator.npz: a small dataset in the layout, dtypes and
conventions of the original project's later version, as its users have such files (run from
the repository root: /usr/bin/python3 tests/data/make_original_npz.py). Written from the
documented layout (docs/foundation.md, issue 14), not from the original's code:

  initial_states      float64 [N, 2]
  target_states       float64 [N, 2]
  control_sequences   float64 [N, T, 1]
  state_trajectories  float64 [N, T+1, 2]   the stored controls simulated by exact ZOH
  costs               float64 [N]           sum(u^2) * dt   (ours: sum(u^2))
  no metadata, so no dt: the double integrator at dt = 0.33 (the first version used 5/15)

The controls are its later minimum-energy expert's: the continuous-time optimum
u(t) = [tf - t, 1] W^-1 (x_f - e^{A tf} x_0), W = [[tf^3/3, tf^2/2], [tf^2/2, tf]], sampled at the
interval midpoints, so the discrete rollout misses the target by a small residual that
tests/integration/test_original_npz.py recomputes independently."""
import numpy as np

OUT = "tests/data/original_v2_double_integrator.npz"
DT, T, N, SEED = 0.33, 15, 16, 2025


def main():
    rng = np.random.default_rng(SEED)
    x0 = rng.uniform(-2, 2, (N, 2))
    xf = rng.uniform(-2, 2, (N, 2))
    tf = T * DT
    W = np.array([[tf**3 / 3, tf**2 / 2], [tf**2 / 2, tf]])
    free = x0 @ np.array([[1.0, tf], [0.0, 1.0]]).T  # e^{A tf} x0
    lam = np.linalg.solve(W, (xf - free).T).T  # [N, 2]
    t = (np.arange(T) + 0.5) * DT
    u = (tf - t)[None, :] * lam[:, 0:1] + lam[:, 1:2]  # [N, T]
    A = np.array([[1.0, DT], [0.0, 1.0]])
    B = np.array([DT * DT / 2, DT])
    traj = np.zeros((N, T + 1, 2))
    traj[:, 0] = x0
    for k in range(T):
        traj[:, k + 1] = traj[:, k] @ A.T + u[:, k : k + 1] * B
    np.savez(OUT, initial_states=x0, target_states=xf, control_sequences=u[:, :, None],
             state_trajectories=traj, costs=(u**2).sum(axis=1) * DT)


if __name__ == "__main__":
    main()
