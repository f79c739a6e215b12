#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer + UndefinedBehaviorSanitizer) and
# runs each for a bounded time. Not part of CI: run it by hand or on a schedule.
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s each, fuzz_csr fuzz_csr_differential fuzz_request
# Work files go to $EVPN_FUZZ_DIR (default build-fuzz/); inputs that libFuzzer finds are kept
# there, the seed corpus in fuzz/corpus/<target>/ is only read. Crashes are written as
# build-fuzz/crash-* and the script exits non-zero.
set -euo pipefail

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_csr fuzz_csr_differential fuzz_request)
root=$(cd "$(dirname "$0")/.." && pwd)
out=${EVPN_FUZZ_DIR:-$root/build-fuzz}

# clang and its libFuzzer runtime (Debian bookworm), on top of the project's own build packages.
packages=(clang-14 libclang-rt-14-dev libssl-dev libboost1.81-dev nlohmann-json3-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "fuzz/run.sh: missing packages: ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "fuzz/run.sh: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The product code under test, compiled into each target as it is.
sources=(common/result.cpp common/time.cpp common/crypto/openssl_error.cpp common/crypto/key.cpp
         common/crypto/csr.cpp common/crypto/certificate.cpp common/protocol/enrollment.cpp
         ca-service/enrollment/tokens.cpp)
mkdir -p "$out"
for target in "${targets[@]}"; do
  echo "fuzz/run.sh: building $target" >&2
  (cd "$root" && clang++-14 -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined \
     -fno-sanitize-recover=undefined -I"$root" "fuzz/$target.cpp" "${sources[@]}" -lssl -lcrypto \
     -o "$out/$target")
done

for target in "${targets[@]}"; do
  echo "fuzz/run.sh: running $target for ${seconds} s" >&2
  mkdir -p "$out/corpus/$target"
  "$out/$target" -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$out/" "$out/corpus/$target" "$root/fuzz/corpus/$target"
done
