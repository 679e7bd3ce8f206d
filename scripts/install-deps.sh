#!/bin/sh
# Installs the Debian packages TRC builds, tests and runs with. One script for `make deps`,
# .ci/run and docker/Dockerfile, so all three install the same thing.
# --if-missing: do nothing when everything is already there (fast path for `make test`).
# --runtime: only the shared libraries trcd needs at run time (container runtime stage).
set -eu
BUILD_PKGS="build-essential pkg-config libopenblas-pthread-dev libjansson-dev libzip-dev libcmocka-dev
 libmicrohttpd-dev libuv1-dev libsqlite3-dev"
# python3-torch (about 580 MB with its dependencies) checks clients/python/convert_checkpoint.py.
TEST_PKGS="python3 python3-pytest python3-numpy valgrind wrk clang-format cppcheck python3-yaml
 python3-torch"
RUNTIME_PKGS="libopenblas0-pthread libjansson4 libzip4 libmicrohttpd12 libuv1 libsqlite3-0 ca-certificates curl"

mode=${1:-all}
case "$mode" in
  --runtime) PKGS=$RUNTIME_PKGS ;;
  --build) PKGS=$BUILD_PKGS ;;
  *) PKGS="$BUILD_PKGS $TEST_PKGS" ;;
esac

if [ "$mode" = "--if-missing" ]; then
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
