"""Expert data beyond one machine: `trc generate --shard I/N` + `trc merge` give exactly the
dataset of one `trc generate` with the same seed (bytes compared), bad shards are refused with
one line and nothing written, and the Kubernetes pipeline of docker/k8s (Indexed Job of shards,
merge Job, training Job) hangs together and runs here with tiny sizes."""
import os
import re
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRC_BIN = os.path.abspath(os.environ.get("TRC_BIN", os.path.join(ROOT, "build", "trc")))
K8S = os.path.join(ROOT, "docker", "k8s")


def trc(*args, ok=True):
    r = subprocess.run([TRC_BIN, *map(str, args)], capture_output=True, text=True, timeout=300)
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def shards(tmp_path, settings, n, name="part"):
    paths = []
    for i in range(n):
        p = tmp_path / f"{name}{i}.npz"
        out = trc("generate", *settings, "--shard", f"{i}/{n}", "--out", p).stdout
        assert f"shard {i}/{n}" in out
        paths.append(p)
    return paths


@pytest.mark.parametrize("nshards", [1, 3, 7])
def test_merge_is_the_single_run_byte_for_byte(tmp_path, nshards):
    settings = ["--num-samples", 250, "--seed", 11]
    trc("generate", *settings, "--out", tmp_path / "single.npz")
    parts = shards(tmp_path, settings, nshards)
    trc("merge", "--out", tmp_path / "merged.npz", *reversed(parts))  # any order
    assert (tmp_path / "merged.npz").read_bytes() == (tmp_path / "single.npz").read_bytes()
    # a shard alone is smaller and says where it sits
    if nshards > 1:
        assert parts[0].stat().st_size < (tmp_path / "single.npz").stat().st_size


def test_merge_replaces_unconverged_as_the_single_run(tmp_path):
    """ilqr with few iterations leaves many samples unconverged: the single run replaces them by
    the next draws, the merge solves those same candidates; only the solve times differ."""
    np = pytest.importorskip("numpy")
    settings = ["--system", "van_der_pol", "--expert", "ilqr", "--num-samples", 40, "--seed", 3,
                "--max-iters", 4, "--threads", 1]
    out = trc("generate", *settings, "--out", tmp_path / "single.npz").stdout
    assert "replaced by the next draws" in out and " 0 unconverged" not in out
    parts = shards(tmp_path, settings, 4)
    out = trc("merge", "--out", tmp_path / "merged.npz", *parts).stdout
    replaced = int(out.split(" replaced by candidates solved here")[0].rsplit(" ", 1)[1])
    assert replaced > 0
    a, b = np.load(tmp_path / "single.npz"), np.load(tmp_path / "merged.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        if k != "expert_solve_ms":  # wall time, the one key two identical runs differ in
            assert np.array_equal(a[k], b[k]), k
    assert (b["expert_solve"][:, 1] == 1).all()


def refused(tmp_path, args, message):
    out = tmp_path / "out.npz"
    r = trc("merge", "--out", out, *args, ok=False)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".tmp." in p.name]


def test_bad_shards_are_refused_and_nothing_written(tmp_path):
    settings = ["--num-samples", 60, "--seed", 5]
    p = shards(tmp_path, settings, 3)
    other_seed = shards(tmp_path, ["--num-samples", 60, "--seed", 6], 3, name="seed6-")
    other_size = shards(tmp_path, ["--num-samples", 61, "--seed", 5], 3, name="n61-")
    other_count = shards(tmp_path, settings, 2, name="two-")
    other_expert = shards(tmp_path, settings + ["--expert", "lqr"], 3, name="lqr-")
    trc("generate", *settings, "--out", tmp_path / "whole.npz")
    refused(tmp_path, [p[0], p[1]], "1 of 3 shards missing (index 2)")
    refused(tmp_path, [p[0], p[1], p[1], p[2]], "shard 1/3 given twice")
    refused(tmp_path, [p[0], p[1], other_seed[2]], "shards of different runs")
    refused(tmp_path, [p[0], p[1], other_expert[2]], "shards of different runs")
    refused(tmp_path, [p[0], p[1], other_size[2]], "shards of different runs")
    refused(tmp_path, [p[0], other_count[1]], "shards of different runs")
    refused(tmp_path, [p[0], tmp_path / "whole.npz"], "not a shard")


@pytest.mark.parametrize("shard", ["3/3", "1/0", "-1/3", "a/3", "1/", "/3", "2/3/4", "1.0/3",
                                   "0/100001"])
def test_generate_refuses_bad_shard_syntax(tmp_path, shard):
    r = trc("generate", "--num-samples", 10, "--shard", shard, "--out", tmp_path / "x.npz", ok=False)
    assert r.returncode == 2 and "--shard: expected I/N" in r.stderr, r.stderr
    assert not (tmp_path / "x.npz").exists()


def test_generate_refuses_more_shards_than_samples(tmp_path):
    r = trc("generate", "--num-samples", 3, "--shard", "0/4", "--out", tmp_path / "x.npz", ok=False)
    assert r.returncode == 2 and "every shard needs one sample" in r.stderr, r.stderr
    assert not (tmp_path / "x.npz").exists()


# ---------------------------------------------------------------- the Kubernetes pipeline

def manifest(name):
    yaml = pytest.importorskip("yaml")  # only the manifest tests need it
    with open(os.path.join(K8S, name)) as f:
        return list(yaml.safe_load_all(f))


def pipeline():
    run = {d["kind"]: d for d in manifest("sharded-run.yaml")}
    (gen,) = manifest("generate-shards-job.yaml")
    (merge,) = manifest("merge-job.yaml")
    (train,) = manifest("train-data-job.yaml")
    return run, gen, merge, train


def container(job):
    (c,) = job["spec"]["template"]["spec"]["containers"]
    return c


def test_pipeline_manifests_hang_together():
    run, gen, merge, train = pipeline()
    cm, pvc = run["ConfigMap"], run["PersistentVolumeClaim"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    spec = gen["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == int(cm["data"]["SHARDS"]) >= 2
    assert 1 <= spec["parallelism"] <= spec["completions"]
    gen_script = container(gen)["args"][0]
    assert '--shard "$JOB_COMPLETION_INDEX/$SHARDS"' in gen_script
    for job in (gen, merge, train):
        assert job["kind"] == "Job" and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        c = container(job)
        assert c["command"] == ["/bin/sh", "-ec"]
        assert {"configMapRef": {"name": cm["metadata"]["name"]}} in c["envFrom"]
        vols = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        data = mounts["/var/lib/trc/data"]
        assert vols[data["name"]]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
        sc = job["spec"]["template"]["spec"]["securityContext"]
        assert sc["runAsNonRoot"] and sc["runAsUser"] == 10001
        # every variable the script reads is set by the ConfigMap, the container or Kubernetes
        known = set(cm["data"]) | {e["name"] for e in c.get("env", [])} | {"JOB_COMPLETION_INDEX"}

        used = set(re.findall(r"\$\{?([A-Z_]+)", c["args"][0]))
        assert used <= known, used - known
    assert mounts["/var/lib/trc/data"].get("readOnly")  # training only reads the data
    models = mounts["/var/lib/trc/models"]
    assert vols[models["name"]]["persistentVolumeClaim"]["claimName"] == "trc-models"
    # the merge reads the files the shards write
    assert "/var/lib/trc/data/$RUN/shard-$JOB_COMPLETION_INDEX.npz" in gen_script
    assert "/var/lib/trc/data/$RUN/shard-*.npz" in container(merge)["args"][0]
    assert '--data "/var/lib/trc/data/$RUN/train.npz"' in container(train)["args"][0]


def test_pipeline_runs_and_gives_the_single_run(tmp_path):
    """The three Jobs' scripts in order, as Kubernetes would run them (one process per index),
    with tiny sizes: the merged data is the single run's, and a model gets published."""
    run, gen, merge, train = pipeline()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(TRC_BIN, bindir / "trc")
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", **run["ConfigMap"]["data"])
    env.update(SYSTEM="double_integrator", EXPERT="min_energy", SAMPLES="300", EPOCHS="1",
               SIZE="small", THREADS="1")
    data, models = tmp_path / "data", tmp_path / "models"
    models.mkdir()
    (tmp_path / "work").mkdir()

    def sh(job, **extra):
        c = container(job)
        script = c["args"][0].replace("/var/lib/trc/data", str(data)) \
            .replace("/var/lib/trc/models", str(models)).replace("/work/", f"{tmp_path}/work/")
        e = dict(env, **{x["name"]: x["value"] for x in c.get("env", []) if x["name"] != "THREADS"},
                 **extra)
        r = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, timeout=300, env=e)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    for i in range(gen["spec"]["completions"]):
        sh(gen, JOB_COMPLETION_INDEX=str(i))
    sh(merge)
    merged = data / env["RUN"] / "train.npz"
    trc("generate", "--system", env["SYSTEM"], "--expert", env["EXPERT"], "--num-samples",
        env["SAMPLES"], "--seed", env["SEED"], "--out", tmp_path / "single.npz")
    assert merged.read_bytes() == (tmp_path / "single.npz").read_bytes()
    out = sh(train)
    assert f"published {env['MODEL_NAME']}.safetensors" in out
    assert (models / f"{env['MODEL_NAME']}.safetensors").stat().st_size > 10_000
