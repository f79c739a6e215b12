#!/usr/bin/env bash
# Installs the Debian bookworm packages evpn-enroll needs to build, test and run its demo.
# Packages already installed are skipped; nothing is downloaded when all are present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost1.81-dev libssl-dev libstrophe-dev nlohmann-json3-dev libspdlog-dev
  libcli11-dev libsqlite3-dev libpq-dev catch2
  ejabberd postgresql openssl curl ca-certificates python3
  systemd
  debootstrap systemd-container
  debhelper dpkg-dev fakeroot lintian
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi

echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Debian's ejabberd package would start a system-wide server on install; the demo and the
# tests run their own on loopback, so keep package scripts from starting services.
policy=/usr/sbin/policy-rc.d
created_policy=no
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; created_policy=yes
fi
trap '[ "$created_policy" = yes ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
