#!/usr/bin/env bash
# The benchmarks of the README's Performance section in one command: installs what is missing (cfssl, GNU time), builds
# Release into build-bench/, runs evpn-bench, prints the table and writes build-bench/results.json.
# Usage: bench/run.sh [STORM_AGENTS [STORM_PARALLEL]]   (as root on Debian bookworm; default 1000 32)
# step-ca, the second durable peer, is built with `go install` into EVPN_BENCH_TOOLS (default
# /var/tmp/evpn-bench-tools, outside the repository) when a Go toolchain and its module proxy are
# there; without them its row says why it was skipped. EVPN_BENCH_ONLY=ca,cfssl,... runs some parts.
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

step_ca_version=v0.30.2
tools=${EVPN_BENCH_TOOLS:-/var/tmp/evpn-bench-tools}
go=$(command -v go || echo /usr/local/go/bin/go)
unset EVPN_BENCH_STEP_CA EVPN_BENCH_STEP_CA_SKIP
export EVPN_BENCH_STEP_CA_VERSION=$step_ca_version
# A binary made by go install says "0000000-dev" as its version: a stamp file says which it is.
if [ -x "$tools/bin/step-ca" ] && [ "$(cat "$tools/bin/step-ca.version" 2>/dev/null)" = "$step_ca_version" ]; then
  export EVPN_BENCH_STEP_CA=$tools/bin/step-ca
elif [ ! -x "$go" ]; then
  export EVPN_BENCH_STEP_CA_SKIP="skipped: no Go toolchain to build step-ca with"
else
  echo "building step-ca $step_ca_version with go install (several minutes the first time)"
  mkdir -p "$tools"
  # CGO off, as smallstep builds its releases: the cgo YubiKey support would need libpcsclite-dev.
  if CGO_ENABLED=0 GOPATH=$tools/gopath GOCACHE=$tools/gocache GOBIN=$tools/bin \
      "$go" install "github.com/smallstep/certificates/cmd/step-ca@$step_ca_version" >"$tools/go-install.log" 2>&1; then
    echo "$step_ca_version" >"$tools/bin/step-ca.version"
    export EVPN_BENCH_STEP_CA=$tools/bin/step-ca
  else
    export EVPN_BENCH_STEP_CA_SKIP="skipped: go install step-ca@$step_ca_version failed (Go module proxy unreachable?): $(tail -n1 "$tools/go-install.log")"
  fi
fi

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEVPN_TEST_HOOKS=OFF >/dev/null
cmake --build "$build" --target evpn-bench -j"${EVPN_BENCH_JOBS:-2}" >/dev/null

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
timeout 1800 "$build/bench/evpn-bench" "$build/results.json" "$@"
echo "results: $build/results.json"
