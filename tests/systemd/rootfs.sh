#!/usr/bin/env bash
# Makes (once) and prints the path of a Debian bookworm root file system that boots under
# systemd-nspawn: debootstrap minbase with systemd, then the runtime libraries of the given
# binaries installed with apt inside it, as an admin would on a node without this project's
# packages. The result is cached in CACHE_DIR under a key made of the suite, the mirror and
# the package list, so that a rebuild of the binaries with the same libraries reuses it.
# Usage: rootfs.sh CACHE_DIR BINARY...
set -euo pipefail
cache=$1; shift
suite=bookworm

# The mirror the host's apt uses for Debian itself (the only one CI can reach).
mirror=$(apt-get indextargets --format '$(REPO_URI)' "Codename: $suite" 'Label: Debian' | sort -u | head -1)
[ -n "$mirror" ] || { echo "rootfs.sh: the host's apt has no Debian $suite source to debootstrap from" >&2; exit 1; }

# Runtime packages: the Debian packages that own the shared libraries the binaries load.
libs=$(ldd "$@" | awk '/=> \//{ print $3 }' | sort -u)
packages=$(for lib in $libs; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib"; done |
           cut -d: -f1 | sort -u | tr '\n' ' ')
base=systemd,systemd-sysv,dbus
key=$(printf '%s\n' "$suite" "$mirror" "$base" "$packages" | sha256sum | cut -c1-16)
root=$cache/rootfs-$key
if [ -e "$root/.complete" ]; then echo "$root"; exit 0; fi

mkdir -p "$cache"
rm -rf "$root.tmp"
echo "rootfs.sh: debootstrap $suite from $mirror, then apt-get install $packages" >&2
debootstrap --variant=minbase --include="$base" "$suite" "$root.tmp" "$mirror" >&2
# apt inside the root, in a container that shares the host's network (no boot).
systemd-nspawn --register=no --keep-unit --quiet -D "$root.tmp" \
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >&2
systemd-nspawn --register=no --keep-unit --quiet -D "$root.tmp" apt-get clean >&2
touch "$root.tmp/.complete"
rm -rf "$root"
mv "$root.tmp" "$root"
echo "$root"
