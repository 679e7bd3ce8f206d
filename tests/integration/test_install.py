"""`make install` and the Python package, as users consume them: the installed tree (binaries,
static and shared libtrc with its soname, headers, trc.pc, dashboard, a hardened systemd unit),
the examples/ program built against it with `pkg-config --cflags --libs trc` and run, and the
Python client installed into a fresh venv offline (--no-build-isolation, Debian's setuptools)
and used against a live trcd."""
import os
import re
import shutil
import json
import subprocess

import pytest

from conftest import ROOT, SMALL_INIT

TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))

BUILD = os.path.dirname(TRC_BIN)
SANITIZED = "SAN=1" in os.environ.get("MAKEFLAGS", "") or "asan" in BUILD


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if SANITIZED:
        pytest.skip("the sanitizer build is not an installable tree (run by `make test`)")
    dest = tmp_path_factory.mktemp("destdir")
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    r = subprocess.run(["make", "-s", "install", f"BUILD={os.path.relpath(BUILD, ROOT)}",
                        f"DESTDIR={dest}", "PREFIX=/usr"], cwd=ROOT, capture_output=True,
                       text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest, dest / "usr"


def test_installed_tree(installed):
    _, root = installed
    for rel in ["bin/trc", "bin/trcd", "lib/libtrc.a", "lib/libtrc.so.1", "lib/libtrc.so",
                "include/trc/model.h", "include/trc/checkpoint.h", "lib/pkgconfig/trc.pc",
                "share/trc/dashboard/index.html", "lib/systemd/system/trcd.service"]:
        assert (root / rel).exists(), rel
    assert os.readlink(root / "lib/libtrc.so") == "libtrc.so.1"
    dyn = subprocess.run(["readelf", "-d", str(root / "lib/libtrc.so.1")], capture_output=True,
                         text=True, check=True).stdout
    assert re.search(r"SONAME.*\[libtrc\.so\.1\]", dyn), dyn
    # every public header compiles on its own from the installed tree
    for h in sorted(os.listdir(root / "include/trc")):
        r = subprocess.run(["cc", "-std=c11", "-fsyntax-only", "-I", str(root / "include"), "-x",
                            "c", "-"], input=f'#include <trc/{h}>\n', capture_output=True,
                           text=True)
        assert r.returncode == 0, (h, r.stderr)


def test_systemd_unit_is_hardened(installed):
    _, root = installed
    unit = (root / "lib/systemd/system/trcd.service").read_text()
    for line in ["ExecStart=/usr/bin/trcd", "DynamicUser=yes", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/trc", "NoNewPrivileges=yes", "CapabilityBoundingSet=",
                 "Environment=TRC_DASHBOARD_DIR=/usr/share/trc/dashboard", "PrivateTmp=yes"]:
        assert line + "\n" in unit, line
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                            str(root / "lib/systemd/system/trcd.service")],
                           capture_output=True, text=True)
        # verify also checks that ExecStart exists on this machine; only our own lines count
        bad = [l for l in r.stderr.splitlines() if "trcd.service" in l and "/usr/bin/trcd" not in l]
        assert not bad, r.stderr


def test_example_builds_with_pkg_config_and_runs(installed, tmp_path):
    dest, root = installed
    env = dict(os.environ, PKG_CONFIG_PATH=str(root / "lib/pkgconfig"), PKG_CONFIG_SYSROOT_DIR=str(dest))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "trc"], capture_output=True,
                           text=True, env=env, check=True).stdout.split()
    assert f"-L{root}/lib" in flags and "-ltrc" in flags, flags
    exe = tmp_path / "closed_loop"
    r = subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror",
                        os.path.join(ROOT, "examples", "closed_loop.c"), "-o", str(exe)] + flags
                       + ["-lm"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    run_env = dict(os.environ, LD_LIBRARY_PATH=str(root / "lib"))
    # it really links the installed shared library
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, env=run_env).stdout
    assert str(root / "lib/libtrc.so.1") in ldd, ldd
    # a bare checkpoint records no time step: the example refuses to assume one
    r = subprocess.run([str(exe), SMALL_INIT, "1,0.5", "5", "double_integrator"],
                       capture_output=True, text=True, env=run_env, timeout=60)
    assert r.returncode != 0 and "time step" in r.stderr, (r.returncode, r.stderr)
    r = subprocess.run([str(exe), SMALL_INIT, "1,0.5", "5", "double_integrator", "0.3333333"],
                       capture_output=True, text=True, env=run_env, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("system double_integrator") and len(lines) == 7, r.stdout
    # its first control is the network's, as `trc predict` computes it
    first_u = float(lines[1].split()[3])
    p = subprocess.run([TRC_BIN, "predict", "--checkpoint", SMALL_INIT, "--system",
                        "double_integrator", "--state", "1,0.5", "--target", "0,0"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    u0 = json.loads(p.stdout)["controls"][0]
    u0 = u0[0] if isinstance(u0, list) else u0
    assert abs(first_u - u0) <= 1e-5 * max(1.0, abs(u0)), (first_u, u0)
    # bad input: a clear error and a non-zero exit
    r = subprocess.run([str(exe), SMALL_INIT, "1,nan", "5", "double_integrator", "0.3333333"],
                       capture_output=True, text=True, env=run_env)
    assert r.returncode != 0 and "finite" in r.stderr


def test_python_client_installs_offline_into_a_venv(tmp_path, trcd):
    if SANITIZED:
        pytest.skip("packaging is checked by `make test`")
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=300)
    # setuptools builds wheels with `wheel`: Debian ships it as a wheel file (python3-wheel-whl)
    r = subprocess.run([str(venv / "bin/pip"), "install", "--no-index", "--find-links",
                        "/usr/share/python-wheels", "wheel"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    # from a copy: an in-tree build would leave build/ and *.egg-info in the sources
    src = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "clients", "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    r = subprocess.run([str(venv / "bin/pip"), "install", "--no-index", "--no-build-isolation",
                        str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(venv / "bin/trc-client"), "--url", trcd.url, "control", "--state",
                        "1,0.5", "--target", "0,0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["controls"]) == 15
    r = subprocess.run([str(venv / "bin/trc-convert-checkpoint"), "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "usage" in r.stdout.lower(), r.stderr
    # the package is importable from the venv, not from the source tree
    r = subprocess.run([str(venv / "bin/python"), "-c",
                        "import trc_client, sys; print(trc_client.__file__)"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert str(venv) in r.stdout, r.stdout + r.stderr
