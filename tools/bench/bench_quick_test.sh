#!/bin/bash
# CI smoke test: the side-by-side bench in --quick mode must stay runnable
# end to end (both servers start, every scenario runs, no errors, every get
# hits). It checks no performance numbers.
set -euo pipefail
if [ ! -x /usr/bin/memcached ]; then
  echo "SKIP: /usr/bin/memcached is not installed"
  exit 0
fi
exec /usr/bin/python3 tools/bench/bench.py --quick --no_install \
  --loadgen=tools/loadgen/loadgen --memshard=server/memshard
