#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite (unit tests and
# integration tests against a real ejabberd that the tests start and stop on loopback).
# Usage: deploy/test.sh [extra ctest arguments]   (as root on Debian bookworm)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
build=${EVPN_BUILD_DIR:-$src/build-tests}

"$src/deploy/install-deps.sh"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEVPN_TEST_HOOKS=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
