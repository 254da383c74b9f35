#!/bin/bash
# Instructions per request of one server thread, counted by callgrind:
# deterministic where wall-clock timings on a shared box are not.
#
#   tools/bench/callgrind_ir.sh memshard|memcached|floor BINARY \
#       S1|S2|S3|S4 [SECONDS] [LOADGEN]
#
# floor is //tools/bench:floor_server, the do-nothing epoll server that
# bench.py --floor runs beside the others: what any server pays here.
# Starts BINARY under callgrind (one worker, every thread counted apart),
# prefills 10,000 keys (32-byte keys, 100-byte values), runs one second of
# the scenario's load to warm up, zeroes the counters, runs SECONDS more,
# dumps, and divides the busiest thread's instructions by the requests the
# server counted (cmd_get + cmd_set from `stats`; for S3 divide by 16 for a
# multiget). S4 here is 2000 connections x 1 request/s (valgrind's file
# descriptor limit), reconnects included. Use a -c opt build: the default
# one keeps DCHECKs. Profiles stay in the printed directory
# (callgrind_annotate --inclusive=yes FILE).
# KEYS=N prefills N keys instead. CACHE_SIM=1 also simulates the caches,
# with a 2 MiB last level (this machine's L2 per core), and prints the
# busiest thread's last-level misses (reads + writes) per request: with
# KEYS=200000 and more, items and buckets no longer fit, as in bench.py,
# and the count shows what a change of layout saves where timings are too
# noisy to (the kernel's own misses are not simulated).
# Instructions are not time: with 10,000 keys everything is in cache, so
# work that only saves cache misses shows here as a cost alone (S2's
# look-ahead prefetch, Connection::LookAhead, adds ~300 instructions per
# request; bench.py's 1M keys show what it saves).
set -euo pipefail
kind=$1 bin=$2 scenario=$3 secs=${4:-5}
loadgen=${5:-bazel-bin/tools/loadgen/loadgen}
keys=${KEYS:-10000}
cachesim=()
if [ -n "${CACHE_SIM:-}" ]; then
  cachesim=(--cache-sim=yes --LL=2097152,16,64)
fi
out=$(mktemp -d /tmp/callgrind_ir.XXXXXX)
# Below the ephemeral range (32768-), where the load generator's own
# connections could hold the port.
port=$((22000 + RANDOM % 10000))
if [ "$kind" = memcached ]; then
  # memcached sets RLIMIT_NOFILE's hard limit to -c, and valgrind accepts
  # only its own (the soft limit minus its 12 reserved descriptors).
  ulimit -n 4096
  valgrind --tool=callgrind --separate-threads=yes "${cachesim[@]}" \
    --callgrind-out-file="$out/callgrind.out.%p" "$bin" -p $port -U 0 \
    -l 127.0.0.1 -t 1 -m 1024 -c 4084 -u root > "$out/server.log" 2>&1 &
elif [ "$kind" = floor ]; then
  valgrind --tool=callgrind --separate-threads=yes "${cachesim[@]}" \
    --callgrind-out-file="$out/callgrind.out.%p" "$bin" --listen=127.0.0.1 \
    --port=$port > "$out/server.log" 2>&1 &
else
  valgrind --tool=callgrind --separate-threads=yes "${cachesim[@]}" \
    --callgrind-out-file="$out/callgrind.out.%p" "$bin" --listen=127.0.0.1 \
    --port=$port --workers=1 --memory_limit_mb=1024 --max_connections=19000 \
    --admin_port=0 > "$out/server.log" 2>&1 &
fi
vpid=$!
trap 'kill $vpid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.3
done
common="--port=$port --keys=$keys --key_size=32 --value_size=100 --json"
"$loadgen" $common --connections=50 --prefill --duration=0 > /dev/null
case $scenario in
  S1) args="--connections=50 --pipeline=1 --ratio=9:1" ;;
  S2) args="--connections=50 --pipeline=16 --ratio=1:0" ;;
  S3) args="--connections=50 --multiget=16 --ratio=1:0" ;;
  S4) args="--connections=2000 --rate=2000 --ratio=9:1" ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
requests() {
  printf 'stats\r\nquit\r\n' | nc -q2 127.0.0.1 $port | tr -d '\r' |
    awk '$2 == "cmd_get" {g = $3} $2 == "cmd_set" {s = $3} END {print g + s}'
}
"$loadgen" $common $args --expect_all_hits --duration=1 --warmup=0 > /dev/null
callgrind_control -z $vpid > /dev/null 2>&1
before=$(requests)
"$loadgen" $common $args --expect_all_hits --duration="$secs" --warmup=0 \
  > "$out/loadgen.json"
after=$(requests)
callgrind_control -d $vpid > /dev/null 2>&1
sleep 1
kill $vpid
wait $vpid 2>/dev/null || true
busiest=$(for f in "$out"/callgrind.out.*; do
  echo "$(grep -m1 '^summary:' "$f" | awk '{print $2}') $f"
done | sort -n | tail -1)
ir=${busiest%% *}
n=$((after - before))
echo "requests=$n busiest_thread_ir=$ir ir_per_request=$((ir / (n > 0 ? n : 1)))"
if [ -n "${CACHE_SIM:-}" ]; then
  # events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
  grep -m1 '^summary:' "${busiest#* }" | awk -v n=$n '{
    printf "d1_misses_per_request=%.2f ll_misses_per_request=%.2f\n",
      ($6 + $7) / (n > 0 ? n : 1), ($9 + $10) / (n > 0 ? n : 1) }'
fi
echo "profile: ${busiest#* }"
