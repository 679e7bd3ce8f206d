"""docker/ checked without a Docker engine (none runs on the development machines, so the image
is never built here): the Dockerfile's build steps are the install script and make targets CI
runs, the runtime packages cover every library the binaries link, every TRC_* setting is one
trcd knows, the YAML parses and hangs together, probes and health checks hit routes that answer
200 on a live trcd, the default-model and training-Job command lines run (with tiny sizes), and
the entry point seeds a models directory and hands SIGTERM to trcd."""
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

yaml = pytest.importorskip("yaml")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCKER = os.path.join(ROOT, "docker")
TRCD_BIN = os.path.abspath(os.environ.get("TRCD_BIN", os.path.join(ROOT, "build", "trcd")))
TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))


def read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def dockerfile():
    """[(stage index, INSTRUCTION, argument text)] with continuations joined, comments dropped."""
    lines, cur = [], ""
    for raw in read("docker", "Dockerfile").splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        cur += (" " if cur else "") + s.rstrip("\\").strip()
        if not s.endswith("\\"):
            lines.append(cur)
            cur = ""
    out, stage = [], -1
    for line in lines:
        instr, _, rest = line.partition(" ")
        if instr.upper() == "FROM":
            stage += 1
        out.append((stage, instr.upper(), rest.strip()))
    return out


def instr(name, stage=None):
    return [a for s, i, a in dockerfile() if i == name and (stage is None or s == stage)]


def image_env():
    env = {}
    for arg in instr("ENV", stage=1):
        for tok in shlex.split(arg):
            k, _, v = tok.partition("=")
            env[k] = v
    return env


def k8s_docs():
    docs = {}
    for name in sorted(os.listdir(os.path.join(DOCKER, "k8s"))):
        if name == "kustomization.yaml":  # kustomize's list of the files, not a cluster object
            continue
        for doc in yaml.safe_load_all(read("docker", "k8s", name)):
            docs.setdefault(doc["kind"], []).append((name, doc))
    return docs


def deployment():
    return k8s_docs()["Deployment"][0][1]


def trcd_flags():
    out = subprocess.run([TRCD_BIN, "--help"], capture_output=True, text=True, timeout=10)
    return set(re.findall(r"--([a-z][a-z-]*)", out.stdout + out.stderr))


# ---------------------------------------------------------------- the Dockerfile

def test_two_stages_on_bookworm_slim():
    froms = instr("FROM")
    assert len(froms) == 2 and all(f.startswith("debian:bookworm-slim") for f in froms)


def test_build_stage_runs_what_ci_runs():
    ci = read(".ci", "run")
    assert "sh scripts/install-deps.sh" in ci
    runs = " && ".join(instr("RUN", stage=0))
    assert "sh scripts/install-deps.sh --build" in runs
    # Every make target the image builds is one `make test` (CI's command) builds or runs.
    test_recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", read("Makefile"), re.M).group(1)
    ci_targets = {t for line in re.findall(r"\$\(MAKE\) ([^\n]+)", test_recipe) for t in line.split()}
    used = set()
    for cmd in re.findall(r"\bmake\b([^&;|]*)", runs):
        used |= {t for t in cmd.split() if not t.startswith("-")}
    assert used and used <= ci_targets, (used, ci_targets)
    assert "all" in used


def test_install_script_modes_exist():
    script = read("scripts", "install-deps.sh")
    assert "--build)" in script and "--runtime)" in script
    r = subprocess.run(["sh", "-n", os.path.join(ROOT, "scripts", "install-deps.sh")])
    assert r.returncode == 0


def test_runtime_stage():
    runs = " && ".join(instr("RUN", stage=1))
    assert "install-deps.sh --runtime" in runs
    user = instr("USER", stage=1)
    assert user and not user[-1].startswith(("root", "0"))
    assert instr("EXPOSE", stage=1) == ["8080"]
    assert instr("VOLUME", stage=1) == ["/var/lib/trc"]
    assert instr("STOPSIGNAL", stage=1) == ["SIGTERM"]
    hc = instr("HEALTHCHECK", stage=1)
    assert hc and "curl" in hc[0] and "http://127.0.0.1:8080/healthz" in hc[0]
    env = image_env()
    assert env["TRC_HOST"] == "0.0.0.0" and env["TRC_PORT"] == "8080"
    assert env["TRC_MODELS_DIR"].startswith("/var/lib/trc/") and env["TRC_DATA_DIR"].startswith("/var/lib/trc/")
    assert env["OPENBLAS_NUM_THREADS"] == "1"
    # Only the binaries and the trained model come from the build stage (the dashboard's static
    # files straight from the sources, so the build stage need not copy them).
    srcs = {src for a in instr("COPY", stage=1) if a.startswith("--from=build") for src in a.split()[1:-1]}
    assert srcs == {"/src/build/trcd", "/src/build/trc", "/out/models/default.safetensors"}
    assert "clients/dashboard /usr/share/trc/dashboard" in instr("COPY", stage=1)


def test_uid_matches_manifests():
    runs = " ".join(instr("RUN", stage=1))
    uid = int(re.search(r"useradd [^&]*--uid (\d+)", runs).group(1))
    for kind in ("Deployment", "Job"):
        for _name, doc in k8s_docs()[kind]:
            assert doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_runtime_packages_cover_linked_libraries():
    """Each shared library trcd and trc link directly is shipped by a runtime package."""
    if not shutil.which("readelf") or not shutil.which("dpkg"):
        pytest.skip("needs readelf and dpkg")
    pkgs = set(re.search(r'RUNTIME_PKGS="([^"]*)"', read("scripts", "install-deps.sh")).group(1).split())
    assert "curl" in pkgs  # the HEALTHCHECK
    for binary in (TRCD_BIN, TRC_BIN):
        if not os.path.exists(binary):
            pytest.fail(f"{binary} is not built")
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                            subprocess.run(["readelf", "-d", binary], capture_output=True, text=True).stdout)
        ldd = dict(re.findall(r"^\s*(\S+) => (\S+)", subprocess.run(["ldd", binary], capture_output=True,
                                                                      text=True).stdout, re.M))
        for lib in needed:
            if lib.startswith(("ld-linux", "libasan", "libubsan")):  # loader; `make asan` runtimes
                continue
            path = os.path.realpath(ldd[lib])
            owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True).stdout
            if not owner:  # merged /usr: dpkg knows the /lib path
                owner = subprocess.run(["dpkg", "-S", path.replace("/usr/lib/", "/lib/", 1)],
                                       capture_output=True, text=True).stdout
            pkg = owner.split(":")[0]
            assert pkg == "libc6" or pkg in pkgs, f"{os.path.basename(binary)} needs {lib} from {pkg}"


def test_dockerignore_keeps_local_state_out():
    ignored = read(".dockerignore").split()
    for entry in (".git", "build", "models", "var", "**/node_modules"):
        assert entry in ignored


# ---------------------------------------------------------------- settings trcd knows

def all_trc_env():
    names = set(image_env())
    compose = yaml.safe_load(read("docker", "compose.yaml"))
    for entry in compose["services"]["trcd"]["environment"]:
        names.add(entry.split("=")[0].strip())
    for kind in ("Deployment", "Job"):
        for _n, doc in k8s_docs()[kind]:
            spec = doc["spec"]["template"]["spec"]
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                names |= {e["name"] for e in c.get("env", [])}
    return {n for n in names if n.startswith("TRC_")}


def test_every_trc_setting_is_a_trcd_flag():
    flags = trcd_flags()
    assert "models-dir" in flags
    for name in all_trc_env():
        if name == "TRC_API_TOKEN":
            continue
        assert name[4:].lower().replace("_", "-") in flags, f"{name} is not a trcd setting"


# ---------------------------------------------------------------- compose and Kubernetes

def test_compose():
    c = yaml.safe_load(read("docker", "compose.yaml"))
    svc = c["services"]["trcd"]
    assert svc["build"]["dockerfile"] == "docker/Dockerfile" and svc["build"]["context"] == ".."
    # published on loopback unless the operator says otherwise (TRC_PUBLISH)
    assert svc["ports"] == ["${TRC_PUBLISH:-127.0.0.1:8080}:8080"]
    vol = svc["volumes"][0].split(":")
    assert vol[1] == "/var/lib/trc" and vol[0] in c["volumes"]
    assert "/healthz" in " ".join(svc["healthcheck"]["test"])


def test_k8s_objects_hang_together():
    docs = k8s_docs()
    assert set(docs) == {"PersistentVolumeClaim", "Deployment", "Service", "Job", "ConfigMap"}
    dep = deployment()
    pod = dep["spec"]["template"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    svc = docs["Service"][0][1]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (c,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080}
    assert svc["spec"]["ports"][0]["targetPort"] in ports
    assert c["resources"]["requests"] and c["resources"]["limits"]
    claims = {d["metadata"]["name"] for _n, d in docs["PersistentVolumeClaim"]}
    for kind in ("Deployment", "Job"):
        for _n, d in docs[kind]:
            spec = d["spec"]["template"]["spec"]
            vols = {v["name"]: v for v in spec["volumes"]}
            for v in vols.values():
                if "persistentVolumeClaim" in v:
                    assert v["persistentVolumeClaim"]["claimName"] in claims
            for cont in spec["containers"] + spec.get("initContainers", []):
                for m in cont.get("volumeMounts", []):
                    assert m["name"] in vols
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["TRC_HOST"] == "0.0.0.0" and env["TRC_PORT"] == "8080"
    kust = yaml.safe_load(read("docker", "k8s", "kustomization.yaml"))
    for f in kust["resources"]:
        assert os.path.exists(os.path.join(DOCKER, "k8s", f))


def test_probes_and_healthchecks_hit_real_routes(trcd):
    c = deployment()["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    paths = {c["readinessProbe"]["httpGet"]["path"], c["livenessProbe"]["httpGet"]["path"]}
    paths |= set(re.findall(r"http://127\.0\.0\.1:8080(/\w+)", " ".join(instr("HEALTHCHECK"))))
    paths |= set(re.findall(r"http://127\.0\.0\.1:8080(/\w+)", read("docker", "compose.yaml")))
    assert paths == {"/readyz", "/healthz"}
    for p in paths:
        assert trcd.request("GET", p).status == 200, p
    openapi = os.path.join(ROOT, "proto", "openapi.yaml")
    if os.path.exists(openapi):
        spec = yaml.safe_load(read("proto", "openapi.yaml"))
        assert paths <= set(spec["paths"])


# ---------------------------------------------------------------- the commands the image runs

def shell_with_tiny_sizes(script, subst):
    """A RUN/Job script made runnable here: paths remapped, the default-model recipe's sizes
    (scripts/default-model.sh reads them from the environment) shrunk to seconds."""
    for a, b in subst:
        script = script.replace(a, b)
    return "export SAMPLES=256 EPOCHS=2\n" + script


@pytest.fixture
def tool_path(tmp_path):
    """A PATH where `trc`, `trcd` and `trc-seed-models` are this build's, as in the image."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(TRC_BIN, bindir / "trc")
    os.symlink(TRCD_BIN, bindir / "trcd")
    os.symlink(os.path.join(DOCKER, "seed-models.sh"), bindir / "trc-seed-models")
    os.symlink(os.path.join(ROOT, "scripts", "default-model.sh"), bindir / "trc-default-model")
    return f"{bindir}:{os.environ['PATH']}"


def need_trc():
    if not os.path.exists(TRC_BIN):
        pytest.fail(f"{TRC_BIN} is not built")


def default_model_script():
    (run,) = [r for r in instr("RUN", stage=0) if "default-model.sh" in r]
    return run


def test_image_default_model_step_trains_a_model(tmp_path, tool_path):
    need_trc()
    script = shell_with_tiny_sizes(default_model_script(),
                                   # the image's paths first: ROOT itself may lie under /tmp
                                   [("/tmp/", f"{tmp_path}/"), ("/out/", f"{tmp_path}/out/"),
                                    ("TRC=build/trc", "TRC=trc"),
                                    ("scripts/default-model.sh", os.path.join(ROOT, "scripts", "default-model.sh"))])
    # the build arguments the recipe reads, at test sizes (the Dockerfile's defaults are checked)
    args = dict(a.split("=", 1) for a in instr("ARG", stage=0) if "=" in a)
    assert int(args["TRC_DEFAULT_EPOCHS"]) >= 20 and int(args["TRC_DEFAULT_SAMPLES"]) >= 10000
    env = dict(os.environ, PATH=tool_path, TRC_DEFAULT_EPOCHS="2", TRC_DEFAULT_SAMPLES="256")
    r = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, timeout=300,
                       env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    model = tmp_path / "out" / "models" / "default.safetensors"
    assert model.exists() and model.stat().st_size > 100_000
    # It is the file the runtime stage copies.
    assert any("/out/models/default.safetensors" in c for c in instr("COPY", stage=1))


def test_training_job_publishes_a_model(tmp_path, tool_path, trcd_factory):
    need_trc()
    (job,) = [d for n, d in k8s_docs()["Job"] if n == "train-job.yaml"]
    c = job["spec"]["template"]["spec"]["containers"][0]
    assert c["command"][:2] == ["/bin/sh", "-ec"]
    models = tmp_path / "models"
    models.mkdir()
    (tmp_path / "work").mkdir()
    script = shell_with_tiny_sizes(c["args"][0], [("/var/lib/trc/models", str(models)), ("/work/", f"{tmp_path}/work/")])
    env = dict(os.environ, PATH=tool_path, **{e["name"]: e["value"] for e in c["env"]})
    r = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    name = env["MODEL_NAME"]
    published = models / f"{name}.safetensors"
    assert published.exists() and not list(models.glob(".*"))  # renamed into place, no temporary left
    srv = trcd_factory(models={"default": str(published)})
    assert srv.control([1.0, 0.5], [0.0, 0.0]).status == 200


# ---------------------------------------------------------------- entry point

def test_entry_scripts_parse():
    for name in ("entrypoint.sh", "seed-models.sh"):
        assert subprocess.run(["sh", "-n", os.path.join(DOCKER, name)]).returncode == 0
    assert instr("ENTRYPOINT", stage=1) == ['["/usr/local/bin/trc-entrypoint"]']


def test_seed_models_copies_once(tmp_path):
    shipped = tmp_path / "shipped.safetensors"
    shipped.write_bytes(b"model-v1")
    models = tmp_path / "vol" / "models"
    env = dict(os.environ, TRC_SHIPPED_MODEL=str(shipped))
    seed = os.path.join(DOCKER, "seed-models.sh")
    r = subprocess.run(["sh", seed, str(models)], env=env, capture_output=True, text=True)
    assert r.returncode == 0 and (models / "default.safetensors").read_bytes() == b"model-v1"
    shipped.write_bytes(b"model-v2")  # a model already on the volume is never overwritten
    assert subprocess.run(["sh", seed, str(models)], env=env).returncode == 0
    assert (models / "default.safetensors").read_bytes() == b"model-v1"
    assert sorted(p.name for p in models.iterdir()) == ["default.safetensors"]


def test_entrypoint_seeds_then_execs_trcd_which_stops_on_sigterm(tmp_path, tool_path):
    """The container's start, emulated: the image's ENV (paths under a temporary directory,
    loopback instead of 0.0.0.0, a free port), the entry point, the shipped model."""
    env = dict(os.environ, PATH=tool_path)
    env.update(image_env())
    root = tmp_path / "var-lib-trc"
    env.update(TRC_HOST="127.0.0.1", TRC_PORT="0", TRC_MODELS_DIR=str(root / "models"),
               TRC_DATA_DIR=str(root / "var"), TRC_DASHBOARD_DIR=os.path.join(ROOT, "clients", "dashboard"),
               TRC_SHIPPED_MODEL=os.path.join(ROOT, "tests", "data", "small_init.safetensors"),
               # the bare fixture records no dt (the image's trained model does): TRC_DT gives it
               TRC_DT="0.3333333333333333")
    log = open(tmp_path / "log", "wb")
    proc = subprocess.Popen(["sh", os.path.join(DOCKER, "entrypoint.sh")], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        port = None
        for _ in range(300):
            m = re.search(r"listening on http://[^\s]*:(\d+)", (tmp_path / "log").read_text(errors="replace"))
            if m:
                port = int(m.group(1))
                break
            assert proc.poll() is None, (tmp_path / "log").read_text()
            time.sleep(0.05)
        assert port, (tmp_path / "log").read_text()
        assert (root / "models" / "default.safetensors").exists()
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("never ready")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            assert b"TRC dashboard" in r.read()
        # exec: the entry point's process *is* trcd, so the container's SIGTERM reaches it.
        assert os.readlink(f"/proc/{proc.pid}/exe") == os.path.realpath(TRCD_BIN)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert (root / "var" / "jobs.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
