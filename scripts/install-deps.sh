#!/bin/sh
# Installs the Debian packages TRC builds, tests and runs with. One script for `make deps`,
# .ci/run and docker/Dockerfile, so all three install the same thing.
#   sh scripts/install-deps.sh [--if-missing] [--build | --runtime]
# --if-missing: install only what is absent, and nothing (no apt-get at all) when all is there.
# --build: only what building needs (`make run`); --runtime: only the shared libraries trcd
# needs at run time (container runtime stage); neither: build + test packages (CI).
set -eu
BUILD_PKGS="build-essential pkg-config libopenblas-pthread-dev libjansson-dev libzip-dev libcmocka-dev
 libmicrohttpd-dev libuv1-dev libsqlite3-dev"
# python3-torch (about 580 MB with its dependencies) checks clients/python/convert_checkpoint.py.
# python3-fastapi + python3-uvicorn: the FastAPI peer `make bench` measures trcd against.
TEST_PKGS="python3 python3-pytest python3-numpy valgrind wrk clang-format cppcheck python3-yaml
 python3-torch python3-venv python3-wheel-whl python3-fastapi python3-uvicorn"
# make fuzz: clang with libFuzzer and the sanitizer runtimes; the API tests: promtool (prometheus)
# checks /metrics, python3-jsonschema checks responses against proto/openapi.yaml.
TEST_PKGS="$TEST_PKGS clang libclang-rt-14-dev prometheus python3-jsonschema"
RUNTIME_PKGS="libopenblas0-pthread libjansson4 libzip4 libmicrohttpd12 libuv1 libsqlite3-0 ca-certificates curl"

if_missing=0
PKGS="$BUILD_PKGS $TEST_PKGS"
for arg in "$@"; do
  case "$arg" in
    --if-missing) if_missing=1 ;;
    --runtime) PKGS=$RUNTIME_PKGS ;;
    --build) PKGS=$BUILD_PKGS ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

if [ "$if_missing" = 1 ]; then
  missing=""
  for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && exit 0
  echo "installing missing packages:$missing"
  PKGS=$missing
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $PKGS >/dev/null
