#!/bin/sh
# `make install`: copies a built tree into DESTDIR/PREFIX, the layout a distribution package or
# `pkg-config --cflags --libs trc` expects.
#   sh scripts/install.sh BUILD DESTDIR PREFIX
#   bin/trc, bin/trcd                       the command line and the service
#   lib/libtrc.a, lib/libtrc.so.1 (+ links) the library (soname libtrc.so.1)
#   include/trc/*.h                         its public headers
#   lib/pkgconfig/trc.pc                    flags for compilers
#   share/trc/dashboard/                    the dashboard trcd serves at /
#   share/doc/trc/                          README and docs
#   lib/systemd/system/trcd.service         a hardened unit (own user, read-only system)
set -eu
BUILD=${1:?usage: install.sh BUILD DESTDIR PREFIX}
DEST=${2:-}
PREFIX=${3:-/usr/local}
cd "$(dirname "$0")/.."
root="$DEST$PREFIX"
version=$(sed -n 's/^#define TRC_VERSION "\(.*\)"/\1/p' core/include/trc/version.h)

install -d "$root/bin" "$root/lib/pkgconfig" "$root/include/trc" "$root/share/trc/dashboard" \
  "$root/share/doc/trc" "$root/lib/systemd/system"
install -m 0755 "$BUILD/trc" "$BUILD/trcd" "$root/bin/"
install -m 0644 "$BUILD/libtrc.a" "$root/lib/"
install -m 0755 "$BUILD/libtrc.so.1" "$root/lib/libtrc.so.1"
ln -sf libtrc.so.1 "$root/lib/libtrc.so"
install -m 0644 core/include/trc/*.h "$root/include/trc/"
install -m 0644 clients/dashboard/* "$root/share/trc/dashboard/"
install -m 0644 README.md docs/*.md "$root/share/doc/trc/"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@VERSION@|$version|g" packaging/trc.pc.in >"$root/lib/pkgconfig/trc.pc"
sed -e "s|@PREFIX@|$PREFIX|g" packaging/trcd.service.in >"$root/lib/systemd/system/trcd.service"
echo "installed trc $version into $root"
