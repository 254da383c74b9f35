#!/usr/bin/env bash
# tools/deb/build_deb.sh builds a .deb from the built binaries; `dpkg -x`
# into a scratch root shows the expected files, the control data is sound,
# and the extracted server starts from the extracted flagfile.
set -euo pipefail

work="${TEST_TMPDIR:-$(mktemp -d)}/deb"
rm -rf "$work"
mkdir -p "$work/out" "$work/root" "$work/control"
fail() { echo "FAIL: $*" >&2; exit 1; }

deb=$(tools/deb/build_deb.sh --out "$work/out" --version 1.2.3 \
  --memshard server/memshard --memshardctl tools/memshardctl/memshardctl)
[ -f "$deb" ] || fail "no package at '$deb'"
[ "$(basename "$deb")" = "memshard_1.2.3_$(dpkg --print-architecture).deb" ] ||
  fail "unexpected name $deb"

dpkg-deb --info "$deb" >"$work/info"
grep -q '^ Package: memshard$' "$work/info" || fail "Package field"
grep -q '^ Version: 1.2.3$' "$work/info" || fail "Version field"
depends=$(sed -n 's/^ Depends: //p' "$work/info")
for want in adduser libc6 libgflags libgoogle-glog libsystemd0 libabsl; do
  case "$depends" in *"$want"*) ;; *) fail "Depends lacks $want: $depends" ;; esac
done

dpkg -x "$deb" "$work/root"
for f in usr/bin/memshard usr/bin/memshardctl; do
  [ -x "$work/root/$f" ] || fail "missing executable $f"
done
for f in lib/systemd/system/memshard.service etc/memshard/memshard.flags \
  usr/share/man/man8/memshard.8.gz usr/share/doc/memshard/memshard-help.txt; do
  [ -f "$work/root/$f" ] || fail "missing $f"
done
cmp "$work/root/lib/systemd/system/memshard.service" \
  tools/systemd/memshard.service || fail "unit differs"
grep -q 'shutdown_grace' "$work/root/usr/share/doc/memshard/memshard-help.txt" ||
  fail "help text lacks the flags"
# Files are root's, whoever built the package.
dpkg-deb --contents "$deb" | awk '{print $2}' | grep -v '^root/root$' &&
  fail "files not owned by root"

dpkg-deb -e "$deb" "$work/control"
grep -qx '/etc/memshard/memshard.flags' "$work/control/conffiles" ||
  fail "the flagfile is not a conffile"
grep -q 'adduser --system' "$work/control/postinst" || fail "postinst user"
for script in postinst prerm postrm; do
  [ -x "$work/control/$script" ] || fail "$script not executable"
  sh -n "$work/control/$script" || fail "$script: syntax"
done

# The packaged server runs from the packaged flagfile (ports overridden).
port_file="$work/port"
"$work/root/usr/bin/memshard" \
  --flagfile="$work/root/etc/memshard/memshard.flags" --port=0 \
  --admin_port=0 --workers=1 --port_file="$port_file" >"$work/log" 2>&1 &
pid=$!
# Up to 30 s: a loaded CI machine may start it slowly.
for _ in $(seq 1 3000); do
  [ -s "$port_file" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log" >&2; fail "server exited"; }
  sleep 0.01
done
[ -s "$port_file" ] || { kill -9 "$pid"; cat "$work/log" >&2; fail "not ready"; }
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { cat "$work/log" >&2; fail "exit status $status"; }
echo "PASS: $deb"
