#!/usr/bin/env bash
# Builds memshard_<version>_<arch>.deb with dpkg-deb: the server, memshardctl,
# the systemd unit, the example flagfile (a conffile), a man page, and
# maintainer scripts that create the `memshard` system user.
#
#   tools/deb/build_deb.sh [--out DIR] [--version V]
#                          [--memshard PATH] [--memshardctl PATH]
#
# Without --memshard/--memshardctl it builds both with `bazel build -c opt`.
# Depends: is computed from the binaries' shared libraries (dpkg -S), so the
# package installs on the Debian release it was built on (Debian 12).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
out="."
version="0.1.0"
memshard=""
memshardctl=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --memshard) memshard="$2"; shift 2 ;;
    --memshardctl) memshardctl="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--version V] [--memshard PATH]" \
         "[--memshardctl PATH]" >&2; exit 2 ;;
  esac
done
if [ -z "$memshard" ] || [ -z "$memshardctl" ]; then
  (cd "$top" && bazel build -c opt //server:memshard //tools/memshardctl)
  bin="$(cd "$top" && bazel info -c opt bazel-bin)"
  memshard="${memshard:-$bin/server/memshard}"
  memshardctl="${memshardctl:-$bin/tools/memshardctl/memshardctl}"
fi
for f in "$memshard" "$memshardctl"; do
  [ -x "$f" ] || { echo "$0: not an executable: $f" >&2; exit 1; }
done
arch="$(dpkg --print-architecture)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
deb="$out/memshard_${version}_${arch}.deb"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
  "$root/etc/memshard" "$root/usr/share/man/man8" \
  "$root/usr/share/doc/memshard"
install -m 0755 "$memshard" "$root/usr/bin/memshard"
install -m 0755 "$memshardctl" "$root/usr/bin/memshardctl"
# The build keeps debug info (-g); the package does not need it.
if command -v strip >/dev/null; then
  strip --strip-unneeded "$root/usr/bin/memshard" "$root/usr/bin/memshardctl"
fi
install -m 0644 "$top/tools/systemd/memshard.service" "$root/lib/systemd/system/"
install -m 0644 "$top/tools/systemd/memshard.flags" "$root/etc/memshard/"
gzip -9n <"$here/memshard.8" >"$root/usr/share/man/man8/memshard.8.gz"
chmod 0644 "$root/usr/share/man/man8/memshard.8.gz"
"$memshard" --help >"$root/usr/share/doc/memshard/memshard-help.txt" 2>&1 || true
install -m 0644 "$top/README.md" "$root/usr/share/doc/memshard/README.md"
for script in postinst prerm postrm; do
  install -m 0755 "$here/$script" "$root/DEBIAN/$script"
done
echo "/etc/memshard/memshard.flags" >"$root/DEBIAN/conffiles"

# Depends: the package of every shared library the binaries load directly.
# One dpkg -S for all of them (each call reads dpkg's whole file database);
# every spelling of a path is asked, since /lib is /usr/lib on Debian 12.
lib_paths=()
for bin in "$root/usr/bin/memshard" "$root/usr/bin/memshardctl"; do
  needed="$(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}')"
  while read -r path; do
    lib_paths+=("$path" "$(realpath "$path")")
    case "$path" in
      /usr/*) lib_paths+=("${path#/usr}") ;;
      *) lib_paths+=("/usr$path") ;;
    esac
  done < <(ldd "$bin" | awk -v needed="$needed" '
    BEGIN { n = split(needed, list, "\n"); for (i = 1; i <= n; i++) want[list[i]] = 1 }
    $2 == "=>" && ($1 in want) && $3 ~ /^\// { print $3 }')
done
mapfile -t libs < <(
  printf '%s\n' "${lib_paths[@]}" | sort -u | xargs -r dpkg -S 2>/dev/null |
    sed 's/: .*//; s/, /\n/g' | sed 's/:.*//' | sort -u || true)
depends="$(printf '%s\n' adduser "${libs[@]}" | sort -u | paste -sd, - |
  sed 's/,/, /g')"
size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"

cat >"$root/DEBIAN/control" <<CONTROL
Package: memshard
Version: $version
Architecture: $arch
Maintainer: memshard developers <memshard@localhost>
Installed-Size: $size
Depends: $depends
Section: net
Priority: optional
Homepage: https://github.com/memshard/memshard
Description: memcached-compatible cache server on a thread-per-core runtime
 memshard speaks memcached's text, meta and binary protocols from N pinned
 worker threads, each with its own epoll loop, over an embedded striped
 in-memory cache. It runs as the systemd service memshard.service
 (sd_notify, watchdog, graceful drain on stop, reload on SIGHUP), is
 configured in /etc/memshard/memshard.flags and inspected with
 memshardctl and a Prometheus endpoint.
CONTROL

dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "$deb"
