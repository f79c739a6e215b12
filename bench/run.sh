#!/usr/bin/env bash
# The benchmarks of the README's Performance section in one command: installs what is missing (cfssl, GNU time), builds
# Release into build-bench/, runs evpn-bench, prints the table and writes build-bench/results.json.
# Usage: bench/run.sh [STORM_AGENTS [STORM_PARALLEL]]   (as root on Debian bookworm; default 1000 32)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${EVPN_BENCH_BUILD_DIR:-$src/build-bench}

"$src/deploy/install-deps.sh"
missing=()
command -v cfssl >/dev/null || missing+=(golang-cfssl)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null || echo "could not install ${missing[*]}"
fi

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEVPN_TEST_HOOKS=OFF >/dev/null
cmake --build "$build" --target evpn-bench -j"${EVPN_BENCH_JOBS:-2}" >/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
timeout 1800 "$build/bench/evpn-bench" "$build/results.json" "$@"
echo "results: $build/results.json"
