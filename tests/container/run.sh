#!/bin/bash
# `make container-test`: builds the real image with podman and exercises it as a platform would.
#   1. a debian:bookworm-slim base image made here from Debian packages (debootstrap minbase,
#      with this machine's apt sources), since no registry but Debian's is reachable;
#   2. `podman build --format docker -f docker/Dockerfile` (the OCI format drops HEALTHCHECK);
#   3. run it: health check, /readyz, /v1/control, a small /v1/train job, a restart keeping the
#      volume, SIGTERM exit status, the generated API token on a non-loopback address;
#   4. the Kubernetes way: read-only root filesystem, read-only models volume with training
#      disabled (refused up front), a root-owned bind mount refused with a clear message;
#   5. podman-compose with docker/compose.yaml (published on loopback only);
# and prints the image size and build time. Everything it makes lives in its own podman storage
# (vfs driver, runc runtime: what works on these hosts) under one folder removed at the end.
# Needs root. TRC_CT_EPOCHS/TRC_CT_SAMPLES size the default model trained in the image (small
# here so the test stays within minutes; the published image uses the Dockerfile's defaults).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

if [ "$(id -u)" != 0 ]; then
  echo "container-test: needs root (podman with the vfs driver and runc); skipped" >&2
  exit 1
fi

log() { printf 'container-test: %s\n' "$*"; }
fail() { printf 'container-test: FAIL: %s\n' "$*" >&2; exit 1; }

# ---- dependencies (Debian packages) ----
need=""
for p in podman runc netavark aardvark-dns debootstrap podman-compose iptables curl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
  log "installing$need"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >/dev/null
fi

# ---- a private podman: own storage, vfs, runc, ulimits within the host's hard limits (podman's
# defaults ask for more, and runc then fails to set them) ----
WORK=$(mktemp -d /var/tmp/trc-ct.XXXXXX)
export CONTAINERS_STORAGE_CONF=$WORK/storage.conf CONTAINERS_CONF=$WORK/containers.conf
cat >"$CONTAINERS_STORAGE_CONF" <<EOF
[storage]
driver = "vfs"
graphroot = "$WORK/storage"
runroot = "$WORK/run"
EOF
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=65536
[ "$nofile" -gt 20000 ] && nofile=20000
# nproc: runc could not set 65536 or the host's own hard limit here (EPERM), 4096 it could; a
# container of trcd runs a few dozen threads
nproc=4096
cat >"$CONTAINERS_CONF" <<EOF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[network]
network_backend = "netavark"
[engine]
runtime = "runc"
events_logger = "file"
cgroup_manager = "cgroupfs"
EOF
P=(podman)
NAME=trc-ct-$$
IMAGE=localhost/trc-ct:$$

cleanup() {
  set +e
  (cd "$ROOT/docker" && COMPOSE_PROJECT_NAME=$NAME podman-compose -f compose.yaml down -v >/dev/null 2>&1)
  "${P[@]}" rm -af -t 2 >/dev/null 2>&1
  "${P[@]}" volume rm -af >/dev/null 2>&1
  "${P[@]}" rmi -af >/dev/null 2>&1
  "${P[@]}" system reset -f >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Polls URL until it answers 200 or the deadline (seconds) passes.
wait_http() {
  local url=$1 deadline=$(($(date +%s) + $2))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# ---- 1. base image from Debian packages ----
t0=$(date +%s)
mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
         awk '/^(URIs:|deb) / && $2 !~ /security/ {print $2; exit}' || true)
mirror=${mirror:-http://deb.debian.org/debian}
log "debootstrap bookworm minbase from $mirror"
debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
  { tail -20 "$WORK/debootstrap.log"; fail "debootstrap"; }
rm -f "$WORK/rootfs/etc/apt/sources.list"
cp /etc/apt/sources.list.d/*.sources "$WORK/rootfs/etc/apt/sources.list.d/" 2>/dev/null ||
  cp /etc/apt/sources.list "$WORK/rootfs/etc/apt/sources.list"
rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/*
tar -C "$WORK/rootfs" -c . | "${P[@]}" import - docker.io/library/debian:bookworm-slim >/dev/null
rm -rf "$WORK/rootfs"
log "base image made in $(($(date +%s) - t0)) s"

# ---- 2. the project's image ----
t0=$(date +%s)
# --layers=false: one working container per stage instead of an image per step (with vfs each
# step's layer is a full copy of the root filesystem: 15 GB and minutes of copying otherwise)
"${P[@]}" build --pull=never --format docker --network host --layers=false \
  --build-arg "TRC_DEFAULT_EPOCHS=${TRC_CT_EPOCHS:-2}" --build-arg "TRC_DEFAULT_SAMPLES=${TRC_CT_SAMPLES:-1000}" \
  -f docker/Dockerfile -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; fail "podman build"; }
build_s=$(($(date +%s) - t0))
size=$("${P[@]}" image inspect --format '{{.Size}}' "$IMAGE")
log "image built in $build_s s, size $((size / 1000000)) MB"
hc=$("${P[@]}" image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
case "$hc" in *healthz*) ;; *) fail "the image has no HEALTHCHECK (built without --format docker?): $hc" ;; esac
user=$("${P[@]}" image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = "trc:trc" ] || fail "the image runs as '$user', not trc:trc"
stripped=$("${P[@]}" run --rm --entrypoint sh "$IMAGE" -c \
  'for b in /usr/local/bin/trcd /usr/local/bin/trc; do if grep -q "\.debug_info" "$b"; then echo "$b"; fi; done')
[ -z "$stripped" ] || fail "binaries are not stripped: $stripped"

# ---- 3. run: health, control, a training job, restart with the volume ----
port=$(free_port)
TOKEN=ct-secret-$$
run_main() {
  "${P[@]}" run -d --name "$NAME" -p "127.0.0.1:$port:8080" -v "$NAME-data:/var/lib/trc" \
    -e "TRC_API_TOKEN=$TOKEN" "$IMAGE" >/dev/null
}
run_main
url=http://127.0.0.1:$port
wait_http "$url/healthz" 120 || { "${P[@]}" logs "$NAME" | tail -20; fail "no /healthz"; }
wait_http "$url/readyz" 60 || fail "not ready"
"${P[@]}" healthcheck run "$NAME" >/dev/null || fail "podman healthcheck run"
out=$(curl -fsS "$url/v1/control" -H 'Content-Type: application/json' -d '{"state":[1,0.5],"target":[0,0]}')
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["controls"]) > 0, d' ||
  fail "control: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/train" -H 'Content-Type: application/json' \
  -d '{"name":"ct","model_size":"small","num_samples":200,"epochs":2}')
[ "$code" = 401 ] || fail "a training request without the token got $code, not 401"
job=$(curl -fsS "$url/v1/train" -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \
  -d '{"name":"ct","model_size":"small","num_samples":200,"epochs":2}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
deadline=$(($(date +%s) + 600))
while :; do
  st=$(curl -fsS "$url/v1/jobs/$job" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  case "$st" in succeeded) break ;; failed | cancelled) fail "job $job: $st" ;; esac
  [ "$(date +%s)" -lt "$deadline" ] || fail "job $job still $st after 600 s"
  sleep 1
done
log "training job $job succeeded"
curl -fsS "$url/v1/control" -H 'Content-Type: application/json' \
  -d '{"model":"ct","state":[1,0.5],"target":[0,0]}' >/dev/null || fail "control with the trained model"
t0=$(date +%s)
"${P[@]}" stop -t 20 "$NAME" >/dev/null
status=$("${P[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")
[ "$status" = 0 ] || fail "trcd exited $status on SIGTERM"
log "stopped on SIGTERM in $(($(date +%s) - t0)) s, exit 0"
"${P[@]}" start "$NAME" >/dev/null
wait_http "$url/readyz" 120 || fail "not ready after restart"
curl -fsS "$url/v1/jobs/$job" | grep -q '"succeeded"' || fail "the job was lost across the restart"
curl -fsS "$url/v1/models" | grep -q '"ct"' || fail "the trained model was lost across the restart"
"${P[@]}" rm -f -t 20 "$NAME" >/dev/null

# No token on a non-loopback address: trcd makes one, logs it once, stores it 0600, requires it.
"${P[@]}" run -d --name "$NAME-gen" -p "127.0.0.1:$port:8080" -v "$NAME-gen:/var/lib/trc" "$IMAGE" >/dev/null
wait_http "$url/readyz" 120 || fail "token run: not ready"
gen=$("${P[@]}" exec "$NAME-gen" sh -c 'stat -c %a /var/lib/trc/var/api-token && cat /var/lib/trc/var/api-token')
mode=$(echo "$gen" | head -n 1)
tok=$(echo "$gen" | tail -n 1)
[ "$mode" = 600 ] || fail "generated token file mode $mode, not 600"
"${P[@]}" logs "$NAME-gen" >"$WORK/gen.log" 2>&1
grep -q "$tok" "$WORK/gen.log" || { tail -5 "$WORK/gen.log"; fail "the generated token was not logged"; }
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url/v1/models/default")
[ "$code" = 401 ] || fail "a state-changing request without the generated token got $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models/default/load" -H "Authorization: Bearer $tok" \
  -H 'Content-Type: application/json' -d '{"checkpoint":"default.safetensors"}')
[ "$code" = 200 ] || fail "the generated token was refused ($code)"
"${P[@]}" rm -f -t 20 "$NAME-gen" >/dev/null
log "generated token: logged once, stored 0600, required"

# ---- 4. as the Kubernetes Deployment runs it ----
"${P[@]}" volume create "$NAME-models" >/dev/null
"${P[@]}" run --rm -v "$NAME-models:/var/lib/trc/models" --entrypoint /usr/local/bin/trc-seed-models \
  "$IMAGE" /var/lib/trc/models >/dev/null
"${P[@]}" run -d --name "$NAME-ro" --read-only --tmpfs /tmp -p "127.0.0.1:$port:8080" \
  -v "$NAME-models:/var/lib/trc/models:ro" -v "$NAME-jobs:/var/lib/trc/var" \
  -e TRC_API_TOKEN="$TOKEN" -e TRC_TRAINING=off --cap-drop ALL --security-opt no-new-privileges \
  "$IMAGE" >/dev/null
wait_http "$url/readyz" 120 || { "${P[@]}" logs "$NAME-ro" | tail; fail "read-only run: not ready"; }
curl -fsS "$url/v1/control" -H 'Content-Type: application/json' -d '{"state":[1,0.5],"target":[0,0]}' \
  >/dev/null || fail "read-only run: control"
body=$(curl -s -w ' %{http_code}' "$url/v1/train" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $TOKEN" -d '{"name":"x","num_samples":200,"epochs":1}')
case "$body" in *" 403") ;; *) fail "training on a read-only deployment was not refused: $body" ;; esac
echo "$body" | grep -q 'train-job.yaml' || fail "the refusal does not name the Job manifest: $body"
"${P[@]}" rm -f -t 20 "$NAME-ro" >/dev/null
log "read-only root and models: serves, refuses training up front"

host_dir=$WORK/rootowned
mkdir -p "$host_dir" && chmod 755 "$host_dir"
"${P[@]}" run --name "$NAME-perm" -v "$host_dir:/var/lib/trc" "$IMAGE" >"$WORK/perm.log" 2>&1 && fail "ran on a root-owned volume"
grep -q "owned by uid 10001" "$WORK/perm.log" || { cat "$WORK/perm.log"; fail "no clear message for a root-owned volume"; }
"${P[@]}" rm -f "$NAME-perm" >/dev/null
log "root-owned bind mount: refused with the ownership it needs"

# ---- 5. podman-compose ----
"${P[@]}" tag "$IMAGE" localhost/trc:latest
cport=$(free_port)
(cd docker && COMPOSE_PROJECT_NAME=$NAME TRC_PUBLISH=127.0.0.1:$cport TRC_API_TOKEN=$TOKEN \
  podman-compose -f compose.yaml up -d --no-build >"$WORK/compose.log" 2>&1) ||
  { tail -20 "$WORK/compose.log"; fail "podman-compose up"; }
wait_http "http://127.0.0.1:$cport/readyz" 120 || { tail -20 "$WORK/compose.log"; fail "compose: not ready"; }
curl -fsS "http://127.0.0.1:$cport/v1/control" -H 'Content-Type: application/json' \
  -d '{"state":[1,0.5],"target":[0,0]}' >/dev/null || fail "compose: control"
(cd docker && COMPOSE_PROJECT_NAME=$NAME podman-compose -f compose.yaml down -v >/dev/null 2>&1)
log "podman-compose: up, served, down"

echo "container: image $((size / 1000000)) MB, built in $build_s s"
echo "container-test: 1 passed, 0 failed"
