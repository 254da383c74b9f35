#!/usr/bin/env bash
# Installs memjs from npm for memjs_integration_test into a cached folder
# (reused across runs) and prints the folder holding node_modules/memjs.
# Exit 3: npm is not available or cannot install (the test skips).
set -euo pipefail
command -v npm >/dev/null 2>&1 || { echo "npm not found" >&2; exit 3; }
command -v node >/dev/null 2>&1 || { echo "node not found" >&2; exit 3; }
version=1.3.2
dir="${MEMSHARD_NPM_CACHE:-/tmp/memshard-npm-cache}/memjs-${version}"
if [ ! -f "$dir/node_modules/memjs/package.json" ]; then
  mkdir -p "$dir"
  cd "$dir"
  # A project folder of its own, not --prefix: --prefix would also move
  # npm's global config (and with it the machine's registry settings).
  [ -f package.json ] || echo '{"private": true}' > package.json
  # A private npm cache keeps the install independent of $HOME.
  # No registry (offline machine, broken proxy): skip, don't fail.
  npm install --no-audit --no-fund --cache "$dir/.npm" "memjs@${version}" >&2 ||
    { echo "npm install memjs@${version} failed" >&2; exit 3; }
fi
echo "$dir"
