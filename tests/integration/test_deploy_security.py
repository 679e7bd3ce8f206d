"""Deployment safety switches of trcd: the token generated when it listens beyond loopback with
none configured, its opt-out, and training disabled where the models directory is read-only
(the Kubernetes replicas). Traffic goes to 127.0.0.1 only."""
import os
import re
import stat

TRAIN = {"name": "x", "num_samples": 64, "epochs": 1}


def test_generated_token_beyond_loopback(trcd_factory):
    srv = trcd_factory(args=["--host", "0.0.0.0"])
    m = re.search(r"Bearer ([0-9a-f]{64})", srv.log())
    assert m, srv.log()
    token = m.group(1)
    path = os.path.join(srv.data_dir, "api-token")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as f:
        assert f.read().strip() == token
    assert srv.request("DELETE", "/v1/models/default").status == 401
    assert srv.control([1, 0], [0, 0]).status == 200  # reading stays open
    r = srv.request("DELETE", "/v1/models/default", headers={"Authorization": "Bearer " + token})
    assert r.status == 200, r
    # the same token after a restart: clients keep working
    srv.restart()
    assert re.search(r"Bearer ([0-9a-f]{64})", srv.log(since_start=True)).group(1) == token


def test_no_generated_token_on_loopback_or_when_opted_out(trcd_factory):
    local = trcd_factory()
    assert "Bearer" not in local.log()
    assert not os.path.exists(os.path.join(local.data_dir, "api-token"))
    opted = trcd_factory(args=["--host", "0.0.0.0", "--insecure-no-auth", "1"])
    assert "Bearer" not in opted.log()
    assert opted.request("DELETE", "/v1/models/default").status == 200


def test_training_disabled_is_refused_up_front(trcd_factory):
    srv = trcd_factory(env={"TRC_TRAINING": "off"})
    r = srv.request("POST", "/v1/train", json=TRAIN)
    assert r.status == 403, r
    err = r.json()["error"]
    assert "train-job.yaml" in err["message"] and err["type"]
    assert srv.request("GET", "/v1/jobs").json()["jobs"] == []
    assert srv.request("POST", "/v1/jobs/abc/resume", json={}).status == 403
    assert srv.control([1, 0], [0, 0]).status == 200
