#!/usr/bin/env bash
# memshard set-up: installs what is missing (Debian 12 packages), builds, and
#   tools/setup.sh run [memshard flags...]  starts memshard in the foreground
#                                           (embedded cache, 127.0.0.1:11211)
#   tools/setup.sh test [bazel targets...]  runs every test (default //...)
# Works as root, or as a user with sudo (used only for apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
[ $# -gt 0 ] && shift
case "$mode" in
  run|test) ;;
  *) echo "usage: $0 run [flags...] | test [targets...]" >&2; exit 2 ;;
esac

build_packages=(bazel-bootstrap g++ pkg-config libabsl-dev libgflags-dev
  libgoogle-glog-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsystemd-dev libssl-dev)
# Real peers the tests start: memcached as reference/backend, its tools and
# clients.
test_packages=(memcached libmemcached-tools python3-pymemcache netcat-openbsd
  procps prometheus libmemcached-dev systemd libsasl2-modules
  nutcracker)

wanted=("${build_packages[@]}")
[ "$mode" = test ] && wanted+=("${test_packages[@]}")

missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
# memjs (a test client) needs node and npm; machines that already have them
# from elsewhere must not get Debian's, which would conflict.
if [ "$mode" = test ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >&2
fi

if [ "$mode" = run ]; then
  bazel build //server:memshard
  exec bazel-bin/server/memshard "$@"
fi

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(//...)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
bazel test "${targets[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -cE '^//\S+\s+(\(cached\) )?PASSED' "$log" || true)
failed=$(grep -cE '^//\S+\s+(FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD)' "$log" || true)
echo "bazel tests: ${passed} passed, ${failed} failed"
exit "$status"
