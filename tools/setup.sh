#!/usr/bin/env bash
# memshard set-up: installs what is missing (Debian 12 packages), builds, and
#   tools/setup.sh run [memshard flags...]  starts memshard in the foreground
#                                           (embedded cache, 127.0.0.1:11211)
#   tools/setup.sh test [bazel targets...]  runs every test (default //...),
#                                           then again under --config=asan
#                                           and --config=tsan, then every
#                                           fuzzer for 60 s; fails if any
#                                           fails
# Test passes can be turned off: MEMSHARD_SANITIZERS="" (or "asan") picks
# the sanitizer passes, MEMSHARD_FUZZ=0 skips the fuzzers (they also run
# by default only when no targets are given).
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
  nutcracker
  # libFuzzer needs clang (tools/fuzz/run_fuzzers.sh).
  clang-14 libclang-rt-14-dev libfuzzer-14-dev)

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
summary=()
overall=0

# One `bazel test` pass; extra bazel flags in "$@". Records "name: counts,
# time" in `summary` and a failure in `overall`.
test_pass() {
  local name=$1
  shift
  local start=$SECONDS
  echo "=== bazel test ${name} ===" >&2
  set +e
  bazel test --keep_going "$@" -- "${targets[@]}" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  set -e
  local passed failed
  passed=$(grep -cE '^//\S+\s+(\(cached\) )?PASSED' "$log" || true)
  failed=$(grep -cE '^//\S+\s+(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD|INCOMPLETE)' "$log" || true)
  # Exit 4: nothing to test (every target filtered out) is not a failure.
  [ "$status" -eq 4 ] && status=0
  summary+=("${name}: ${passed} passed, ${failed} failed, $((SECONDS - start)) s")
  [ "$status" -ne 0 ] && overall=1
  return 0
}

# Each config has its own output directory (--platform_suffix in .bazelrc),
# so the passes do not rebuild each other's objects. The sanitizer passes
# build only tests and what they run (--build_tests_only); tests that
# measure what a sanitizer changes by design are tagged no_asan / no_tsan.
test_pass plain
for config in ${MEMSHARD_SANITIZERS-asan tsan}; do
  test_pass "$config" "--config=${config}"
done

# Fuzzers (tools/fuzz/run_fuzzers.sh: clang-14 + libFuzzer + ASan + UBSan,
# its own output base), 60 s each, two at a time. The plain pass always
# replays the checked-in corpora through the same harnesses (//testing/fuzz).
fuzz_default=1
if [ $# -gt 0 ]; then fuzz_default=0; fi
fuzz="${MEMSHARD_FUZZ-$fuzz_default}"
if [ -n "$fuzz" ] && [ "$fuzz" != 0 ]; then
  start=$SECONDS
  echo "=== fuzzers ===" >&2
  if tools/fuzz/run_fuzzers.sh --seconds=60; then
    summary+=("fuzz: passed, $((SECONDS - start)) s")
  else
    summary+=("fuzz: FAILED, $((SECONDS - start)) s")
    overall=1
  fi
fi

for line in "${summary[@]}"; do echo "bazel tests ${line}"; done
exit "$overall"
