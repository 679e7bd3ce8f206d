#!/usr/bin/python3
"""Writes the .npz fixtures of tests/data with numpy itself (run from the repository root:
/usr/bin/python3 tests/data/make_npz_fixtures.py). The C tests and CLI cases read them to check
that trc reads what numpy writes and rejects malformed archives with a clear message.

numpy_f64_dataset.npz follows the original project's lqr_dataset.npz layout (float64, no
metadata); its controls are minimum-energy controls computed here independently of trc, and its
trajectories are the exact zero-order-hold rollouts, so trc's evaluation of it must find final
errors at float64 rounding level."""
import io
import zipfile

import numpy as np

OUT = "tests/data/"


def min_energy_dataset(n, seed):
    dt, T = 5.0 / 15.0, 15
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([[dt * dt / 2], [dt]])
    C = np.hstack([np.linalg.matrix_power(A, T - 1 - k) @ B for k in range(T)])
    W = C @ C.T
    Phi = np.linalg.matrix_power(A, T)
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-2, 2, (n, 2))
    xt = rng.uniform(-2, 2, (n, 2))
    d = xt - x0 @ Phi.T
    u = (C.T @ np.linalg.solve(W, d.T)).T  # [n, T]
    traj = np.zeros((n, T + 1, 2))
    traj[:, 0] = x0
    for t in range(T):
        traj[:, t + 1] = traj[:, t] @ A.T + u[:, t : t + 1] @ B.T
    out = dict(
        initial_states=x0,
        target_states=xt,
        control_sequences=u[:, :, None],
        state_trajectories=traj,
        costs=(u**2).sum(axis=1),
    )
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def raw_npz(path, entries):
    """An archive of hand-made .npy images (bytes), for malformed headers and lengths."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name + ".npy", data)


def main():
    np.savez(
        OUT + "numpy_types.npz",
        f32=np.arange(6, dtype="<f4").reshape(2, 3) * 0.5,
        f64=np.array([1.0, -2.5, 1e-300, 3.25], dtype="<f8"),
        i64=np.array([-3, 0, 2**40], dtype="<i8"),
        i32=np.array([[1, -2], [3, 4]], dtype="<i4"),
        scalar=np.float64(3.5),
        text=np.array("h\u00e9llo \u2192 \u2713 \U0001f600"),
        words=np.array(["a", "bcd"]),
        empty=np.zeros((0, 2), dtype="<f4"),
    )
    np.savez_compressed(OUT + "numpy_compressed.npz", x=np.arange(100, dtype="<f4"))

    ds = min_energy_dataset(8, 2024)
    np.savez(OUT + "numpy_f64_dataset.npz", **ds)
    good = open(OUT + "numpy_f64_dataset.npz", "rb").read()

    open(OUT + "bad_truncated.npz", "wb").write(good[: len(good) * 6 // 10])
    open(OUT + "bad_not_zip.npz", "wb").write(b"this is not a zip archive\n" * 4)
    open(OUT + "bad_empty.npz", "wb").write(b"")
    crc = bytearray(good)
    at = crc.find(b"control_sequences.npy")
    at = crc.find(b"\x93NUMPY", at) + 200  # inside that entry's data
    crc[at] ^= 0x5A
    open(OUT + "bad_crc.npz", "wb").write(bytes(crc))

    missing = {k: v for k, v in ds.items() if k != "control_sequences"}
    np.savez(OUT + "bad_missing_key.npz", **missing)
    shape2d = dict(ds, control_sequences=ds["control_sequences"][:, :, 0])
    np.savez(OUT + "bad_shape.npz", **shape2d)
    mismatch = dict(ds, target_states=ds["target_states"][:7])
    np.savez(OUT + "bad_mismatch.npz", **mismatch)
    np.savez(OUT + "bad_dtype.npz", **dict(ds, control_sequences=ds["control_sequences"].astype(np.complex128)))
    np.savez(OUT + "bad_bigendian.npz", **dict(ds, initial_states=ds["initial_states"].astype(">f8")))
    fortran = {k: np.asfortranarray(v) for k, v in ds.items()}  # what numpy writes for transposes
    np.savez(OUT + "numpy_fortran_dataset.npz", **fortran)
    np.savez(OUT + "bad_controls_T10.npz", control_sequences=np.zeros((8, 10, 1)))
    np.savez(OUT + "bad_nan.npz", **dict(ds, initial_states=np.full((8, 2), np.nan)))

    entries = {k: npy_bytes(v) for k, v in ds.items()}
    hdr = dict(entries)
    hdr["initial_states"] = b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f8', 'shape': [8 2]}   \n" + b"\0" * 128
    raw_npz(OUT + "bad_header.npz", hdr)
    short = dict(entries)
    short["costs"] = short["costs"][:-8]
    raw_npz(OUT + "bad_length.npz", short)


if __name__ == "__main__":
    main()
