#!/bin/bash
# Builds memshard's libFuzzer targets (testing/fuzz) with clang-14, ASan and
# UBSan, and runs each for N seconds on a temporary copy of its checked-in
# corpus (the checked-in corpus is never written).
#
#   tools/fuzz/run_fuzzers.sh [--seconds=N] [--jobs=J] [TARGET...]
#
#   --seconds=N  per target (default 60)
#   --jobs=J     targets run at once (default 2: one per core on CI)
#   TARGET       text_parser, meta_parser, binary_parser, connection
#                (default: all)
#
# Prints "TARGET: N execs in S s" per target. Exits non-zero if any target
# found something (crash, sanitizer report, leak, timeout, OOM) or did not
# build; the reproducer and the log are kept under the printed directory
# (replay: <fuzzer binary> <crash file>).
#
# MEMSHARD_FUZZ_FLAGS: extra libFuzzer flags for every target (later ones
# win, e.g. "-timeout=60" on a busy machine).
#
# Bazel builds in its own output base (MEMSHARD_FUZZ_OUTPUT_BASE, default
# ~/.cache/memshard_fuzz_bazel): CC=clang-14 reconfigures the C++ toolchain,
# which must not disturb the ordinary gcc build's cache.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ALL_TARGETS=(text_parser meta_parser binary_parser connection)
RUN_SECONDS=60
JOBS=2
TARGETS=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) RUN_SECONDS="${arg#--seconds=}" ;;
    --jobs=*) JOBS="${arg#--jobs=}" ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "unknown flag: $arg" >&2; exit 2 ;;
    *)
      if [[ ! " ${ALL_TARGETS[*]} " == *" $arg "* ]]; then
        echo "unknown target: $arg (have: ${ALL_TARGETS[*]})" >&2
        exit 2
      fi
      TARGETS+=("$arg")
      ;;
  esac
done
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=("${ALL_TARGETS[@]}")
if ! [[ "$RUN_SECONDS" =~ ^[0-9]+$ && "$JOBS" =~ ^[1-9][0-9]*$ ]]; then
  echo "--seconds and --jobs take positive integers" >&2
  exit 2
fi

OUTPUT_BASE="${MEMSHARD_FUZZ_OUTPUT_BASE:-$HOME/.cache/memshard_fuzz_bazel}"
BAZEL=(env CC=clang-14 bazel "--output_base=$OUTPUT_BASE")
LABELS=()
for t in "${TARGETS[@]}"; do LABELS+=("//testing/fuzz:${t}_fuzzer"); done

cd "$ROOT"
echo "building ${TARGETS[*]} (clang-14, libFuzzer, ASan, UBSan)..."
"${BAZEL[@]}" build --config=fuzz "${LABELS[@]}"
BIN="$("${BAZEL[@]}" info --config=fuzz bazel-bin 2>/dev/null)/testing/fuzz"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/memshard_fuzz.XXXXXX")"
FAILED=()
cleanup() {
  # Kill only the fuzzers this script started.
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  if [[ ${#FAILED[@]} -eq 0 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Hard limits per input: a connection input is a few ms even on a busy
# machine, so 25 s is a hang.
MAX_LEN=4096
TIMEOUT=25

run_target() {
  local t="$1" dir="$WORK/$1"
  mkdir -p "$dir/corpus"
  cp "$ROOT/testing/fuzz/corpus/$t/"* "$dir/corpus/" 2>/dev/null || true
  local dict=()
  case "$t" in
    text_parser|meta_parser|connection)
      dict=("-dict=$ROOT/testing/fuzz/ascii.dict") ;;
  esac
  local start end status=0
  start=$(date +%s)
  (
    cd "$dir"
    ASAN_OPTIONS="quarantine_size_mb=64:detect_leaks=1:${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}" \
      "$BIN/${t}_fuzzer" -max_total_time="$RUN_SECONDS" -max_len="$MAX_LEN" \
      -timeout="$TIMEOUT" -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$dir/" "${dict[@]}" ${MEMSHARD_FUZZ_FLAGS:-} \
      "$dir/corpus"
  ) >"$dir/log" 2>&1 || status=$?
  end=$(date +%s)
  echo "$status $((end - start))" >"$dir/result"
}

# At most $JOBS targets at a time.
for t in "${TARGETS[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $JOBS ]]; do wait -n || true; done
  echo "fuzzing $t for ${RUN_SECONDS}s..."
  run_target "$t" &
done
wait || true

for t in "${TARGETS[@]}"; do
  dir="$WORK/$t"
  read -r status elapsed <"$dir/result"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  if [[ -z "$execs" ]]; then
    execs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$dir/log" | tail -1)
  fi
  units=$(find "$dir/corpus" -type f | wc -l)
  echo "$t: ${execs:-0} execs in ${elapsed} s (corpus: ${units} units)"
  artifacts=$(find "$dir" -maxdepth 1 -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
       -o -name 'oom-*' -o -name 'slow-unit-*' \) | grep -v slow-unit || true)
  if [[ "$status" != 0 || -n "$artifacts" ]]; then
    FAILED+=("$t")
    echo "  FINDING (exit status $status); log: $dir/log"
    for a in $artifacts; do
      echo "  reproducer: $a"
      echo "  replay: $BIN/${t}_fuzzer $a"
    done
    grep -m1 -E "ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehavior|libFuzzer)|runtime error|Check failed|F[0-9]{4} " \
      "$dir/log" | sed 's/^/  /' || true
  fi
done

if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "fuzzing found problems in: ${FAILED[*]} (kept: $WORK)"
  exit 1
fi
echo "fuzzing found nothing"
