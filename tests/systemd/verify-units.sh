#!/usr/bin/env bash
# Checks every unit in deploy/systemd with `systemd-analyze verify`, and applies the sysusers.d
# and tmpfiles.d files to an empty root. Any diagnostic fails: verify exits 0 after warning
# about an unknown key or a value it cannot parse, and such a unit would not do what it says.
# Usage: verify-units.sh DEPLOY_SYSTEMD_DIR EVPN_AGENT_BIN EVPN_CA_BIN
set -euo pipefail
units=$1 agent=$(realpath "$2") ca=$(realpath "$3")
work=$(mktemp -d /tmp/evpn-verify-units.XXXXXX)
trap 'rm -rf "$work"' EXIT

# verify refuses an ExecStart= binary that does not exist. The units name the installed paths
# (/usr/bin), so the copies verified here name the binaries just built instead.
shopt -s nullglob
mkdir "$work/units"
for f in "$units"/*.{service,timer,socket,path,target}; do
  sed -e "s|/usr/bin/evpn-agent|$agent|g" -e "s|/usr/bin/evpn-ca|$ca|g" "$f" > "$work/units/${f##*/}"
done
[ -n "$(ls "$work/units")" ] || { echo "no unit files in $units"; exit 1; }
# verify accepts a timer whose service is missing.
for t in "$work"/units/*.timer; do
  [ -e "${t%.timer}.service" ] || { echo "${t##*/} has no service of the same name"; exit 1; }
done
out=$(systemd-analyze verify --man=no "$work"/units/* 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "$out"; exit 1; }
echo "systemd-analyze verify: no diagnostics for $(ls "$work/units" | tr '\n' ' ')"

# The CA's user and state directory, and the check's metrics directory, created in an empty root
# the way a package install would.
root=$work/root
mkdir -p "$root/etc"
systemd-sysusers --root="$root" "$units/evpn-ca.sysusers"
systemd-tmpfiles --create --root="$root" "$units/evpn-ca.tmpfiles" "$units/evpn-agent.tmpfiles"
uid=$(awk -F: '$1 == "evpn-ca" { print $3 }' "$root/etc/passwd")
got=$(stat -c '%a %u' "$root/var/lib/evpn-ca")
[ -n "$uid" ] && [ "$got" = "700 $uid" ] || { echo "/var/lib/evpn-ca is '$got', expected '700 $uid'"; exit 1; }
echo "sysusers.d and tmpfiles.d: user evpn-ca ($uid) owns /var/lib/evpn-ca, mode 700"
[ -d "$root/var/lib/prometheus/node-exporter" ] || { echo "evpn-agent.tmpfiles did not create the metrics directory"; exit 1; }
echo "tmpfiles.d: the check's metrics directory /var/lib/prometheus/node-exporter exists"
