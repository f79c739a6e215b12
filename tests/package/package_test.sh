#!/usr/bin/env bash
# The Debian packages on this machine, as an admin uses them: builds them with deploy/package.sh
# (lintian clean), installs both with `apt-get install ./*.deb`, checks what the maintainer
# scripts set up, runs the demo against the installed binaries in /usr/bin, then removes and
# purges them twice: once with nothing created (purge removes everything the package made) and
# once with a CA and an agent config in place (remove and purge keep them, and purge says so).
# Whatever happens, the trap purges the packages and removes what the test made, so the host is
# left as it was found. Exits 77 (skipped) when not root, or when the host already has the
# packages or their files, which the test would otherwise change.
# The packages are built where deploy/package.sh builds them by default (build-pkg/ in the source
# tree, or EVPN_PKG_DIR), so a run after `deploy/package.sh` reuses its compiler cache entries.
# Usage: package_test.sh SOURCE_DIR
set -euo pipefail
src=$1
out=$(realpath -m "${EVPN_PKG_DIR:-$src/build-pkg}")

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*"; exit 1; }
phase() { printf '\n== %s (at %d s)\n' "$*" "$SECONDS"; }

[ "$(id -u)" = 0 ] || skip "installing packages needs root"
# Two runs on one machine would install and purge the same packages under each other.
exec 9>/run/lock/evpn-enroll-package-test.lock
flock 9

installed() { case $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) in ''|not-installed) return 1 ;; esac; }
made_by_test=(/var/lib/evpn-ca /etc/evpn-ca /var/lib/evpn-agent /etc/evpn-agent)
for p in evpn-agent evpn-ca; do
  ! installed "$p" || skip "package $p is installed on this machine; the test would replace and purge it"
done
for f in "${made_by_test[@]}"; do
  [ ! -e "$f" ] || skip "$f exists on this machine; the test would change it"
done
! getent passwd evpn-ca >/dev/null || skip "the user evpn-ca exists on this machine; the test would remove it"
prometheus_existed=no
[ ! -e /var/lib/prometheus ] || prometheus_existed=yes

work=$(mktemp -d /tmp/evpn-package-test.XXXXXX)
cleanup() {
  local rc=$?
  if installed evpn-agent || installed evpn-ca; then
    echo "cleanup: purging the packages"
    apt_get purge evpn-agent evpn-ca >/dev/null 2>&1 || true
  fi
  rm -rf "${made_by_test[@]}"
  if getent passwd evpn-ca >/dev/null; then userdel evpn-ca; fi
  if getent group evpn-ca >/dev/null; then groupdel evpn-ca; fi
  [ "$prometheus_existed" = yes ] || rm -rf /var/lib/prometheus
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
# ctest's timeout and ^C end the test through the same clean-up.
trap 'exit 143' TERM INT HUP

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -y -q -o DPkg::Lock::Timeout=600 "$@"; }

phase "building the packages (deploy/package.sh)"
EVPN_PKG_DIR=$out "$src/deploy/package.sh" > "$work/package.log" 2>&1 || { cat "$work/package.log"; fail "package.sh"; }
sed -n '/^dpkg-buildpackage: info: binary-only/,$p' "$work/package.log"
version=$(sed -n 's/^project(evpn-enroll VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
for p in evpn-agent evpn-ca; do
  [ "$(dpkg-deb -f "$out/${p}_${version}_$(dpkg --print-architecture).deb" Version)" = "$version" ] ||
    fail "$p has not the project's version $version"
done

install_packages() { (cd "$out" && apt_get install ./*.deb); }

check_gone() {  # everything the packages installed or created, and the user, is gone
  for p in evpn-agent evpn-ca; do ! installed "$p" || fail "$p is still $(dpkg-query -W -f='${db:Status-Status}' "$p")"; done
  while read -r f; do [ -d "$f" ] || [ ! -e "$f" ] || fail "$f is still there"; done < "$work/files"
  [ -z "$(find /etc/systemd/system /var/lib/systemd -name '*evpn*' 2>/dev/null)" ] ||
    fail "systemd state left: $(find /etc/systemd/system /var/lib/systemd -name '*evpn*')"
}

phase "installing with apt-get install ./*.deb"
install_packages
dpkg -L evpn-agent evpn-ca | sort -u > "$work/files"
for f in /usr/bin/evpn-agent /usr/bin/evpn-ca /lib/systemd/system/evpn-ca.service \
         /lib/systemd/system/evpn-agent-enroll.service /usr/lib/sysusers.d/evpn-ca.conf \
         /usr/share/doc/evpn-ca/README.Debian /usr/share/doc/evpn-agent/examples/agent.json; do
  [ -e "$f" ] || fail "$f was not installed"
done
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd evpn-ca) || fail "no user evpn-ca"
[ "$uid" -lt 1000 ] && [ "$home" = /var/lib/evpn-ca ] && [ "$shell" = /usr/sbin/nologin ] ||
  fail "evpn-ca is uid $uid, home $home, shell $shell: expected a system user"
[ "$(stat -c '%a %U %G' /var/lib/evpn-ca)" = "700 evpn-ca evpn-ca" ] ||
  fail "/var/lib/evpn-ca is $(stat -c '%a %U %G' /var/lib/evpn-ca)"
[ -d /var/lib/prometheus/node-exporter ] || fail "the check's metrics directory was not created"
for unit in evpn-agent-enroll.service evpn-agent-renew.timer evpn-agent-check.timer evpn-ca.service; do
  [ "$(systemctl is-enabled "$unit")" = enabled ] || fail "$unit is $(systemctl is-enabled "$unit")"
done
# This host runs no systemd, so "not started" is read from what postinst would start.
starts=$(grep -h 'deb-systemd-invoke' /var/lib/dpkg/info/evpn-agent.postinst /var/lib/dpkg/info/evpn-ca.postinst)
grep -q evpn-agent-renew.timer <<< "$starts" || fail "postinst does not start the renewal timer: $starts"
! grep -q evpn-agent-enroll <<< "$starts" || fail "postinst starts the enroll unit: $starts"
echo "installed: $(wc -l < "$work/files") paths; user evpn-ca (uid $uid); units enabled, the enroll unit not started"

phase "the demo against /usr/bin"
EVPN_BIN_DIR=/usr/bin "$src/deploy/demo.sh" > "$work/demo.log" 2>&1 || { cat "$work/demo.log"; fail "the demo"; }
grep -q '^using /usr/bin/evpn-ca and /usr/bin/evpn-agent$' "$work/demo.log" || fail "the demo did not use /usr/bin"
[ "$(grep -c 'Accepted c2s EXTERNAL authentication for node' "$work/demo.log")" = 3 ] ||
  { cat "$work/demo.log"; fail "the demo's three nodes did not log in"; }
grep -q '^exit code 3; files left under .*: 0$' "$work/demo.log" || { cat "$work/demo.log"; fail "the used-up token"; }
echo "the demo enrolled three nodes with /usr/bin/evpn-agent against /usr/bin/evpn-ca serve"

phase "purge with nothing set up removes everything"
apt_get purge evpn-agent evpn-ca > "$work/purge1.log" 2>&1 || { cat "$work/purge1.log"; fail "purge"; }
check_gone
! getent passwd evpn-ca >/dev/null && ! getent group evpn-ca >/dev/null || fail "user or group evpn-ca left"
[ ! -e /var/lib/evpn-ca ] || fail "/var/lib/evpn-ca left"
[ "$prometheus_existed" = yes ] || [ ! -e /var/lib/prometheus ] || fail "/var/lib/prometheus left"
echo "purged: no file, user, directory or unit state left"

phase "remove and purge keep a CA and an agent config"
install_packages > "$work/install2.log" 2>&1 || { cat "$work/install2.log"; fail "install again"; }
runuser -u evpn-ca -- evpn-ca init --dir /var/lib/evpn-ca --xmpp-domain evpn.test --directory none > /dev/null
install -d -m 0700 /etc/evpn-agent
install -m 0600 /usr/share/doc/evpn-agent/examples/agent.json /etc/evpn-agent/agent.json
apt_get remove evpn-agent evpn-ca > "$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "remove"; }
[ ! -e /usr/bin/evpn-ca ] && [ ! -e /lib/systemd/system/evpn-ca.service ] || fail "remove left the program or unit"
[ "$(stat -c '%a %U' /var/lib/evpn-ca/ca.key)" = "600 evpn-ca" ] || fail "remove did not keep the CA's key"
getent passwd evpn-ca >/dev/null || fail "remove deleted the user that owns the CA"
[ -e /etc/evpn-agent/agent.json ] || fail "remove deleted the agent config"
apt_get purge evpn-agent evpn-ca > "$work/purge2.log" 2>&1 || { cat "$work/purge2.log"; fail "purge"; }
grep -E '^evpn-(ca|agent): kept' "$work/purge2.log"
grep -q '^evpn-ca: kept /var/lib/evpn-ca' "$work/purge2.log" || fail "purge did not say it kept the CA"
grep -q '^evpn-agent: kept /etc/evpn-agent' "$work/purge2.log" || fail "purge did not say it kept the agent config"
[ "$(stat -c '%a %U' /var/lib/evpn-ca/ca.key)" = "600 evpn-ca" ] || fail "purge did not keep the CA's key"
[ -e /etc/evpn-agent/agent.json ] || fail "purge deleted the agent config"
check_gone
echo "remove and purge kept /var/lib/evpn-ca (with user evpn-ca) and /etc/evpn-agent"

phase "done; the trap removes the CA, the agent config and the user the test made"
