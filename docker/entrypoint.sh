#!/bin/sh
# Container entry point: checks that the data volume is writable by this user, seeds the models
# volume with the image's default model when it has none, then becomes trcd (exec, so trcd is
# PID 1 and receives SIGTERM itself). Arguments are passed to trcd; every setting also comes
# from the TRC_* environment of the image.
set -eu
models=${TRC_MODELS_DIR:-/var/lib/trc/models}
data=${TRC_DATA_DIR:-/var/lib/trc/var}
# A host folder bind-mounted on /var/lib/trc keeps its host ownership; say what it needs
# instead of dying on the first mkdir.
need_writable() {
  probe="$1/.trc-write-probe.$$"
  if ! { mkdir -p "$1" && : >"$probe"; } 2>/dev/null; then
    echo "trc: $1 is not writable by uid $(id -u) (user $(id -un)): the volume mounted on" \
         "/var/lib/trc must be owned by uid 10001, gid 10001 (e.g. chown -R 10001:10001 HOSTDIR)," \
         "or mount a named volume" >&2
    exit 1
  fi
  rm -f "$probe"
}
need_writable "$data"
if [ -w "$models" ] || [ ! -e "$models" ]; then
  need_writable "$models"
  trc-seed-models "$models"
fi
exec trcd "$@"
