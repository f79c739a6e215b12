#!/usr/bin/env bash
# Builds the Debian packages evpn-agent and evpn-ca (Release, without the crash-test stop points
# or the tests) with debhelper, from a copy of the source tree, then checks them with lintian:
# any warning or error fails. The version is the one in the CMake project(). The packages land in
# build-pkg/ (EVPN_PKG_DIR changes it), whose path is printed last.
# Usage: deploy/package.sh   (on Debian bookworm; as root it installs missing build tools)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${EVPN_PKG_DIR:-$src/build-pkg}")

"$src/deploy/install-deps.sh"

version=$(sed -n 's/^project(evpn-enroll VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || { echo "package.sh: no VERSION in the project() of $src/CMakeLists.txt" >&2; exit 1; }

# dpkg-buildpackage works in the source tree (debian/, the build directory) and writes the
# packages next to it, so it gets a copy: the checkout stays clean and build-pkg/ holds it all.
stage=$out/evpn-enroll-$version
mkdir -p "$out"
rm -rf "$stage" "$out"/*.deb "$out"/dbgsym "$out"/*.buildinfo "$out"/*.changes
mkdir "$stage"
exclude=(--exclude=./.git --exclude='./build*')
case $out in "$src"/*) exclude+=(--exclude="./${out#"$src"/}") ;; esac
tar -C "$src" "${exclude[@]}" -cf - . | tar -C "$stage" -xf -
cp -r "$src/deploy/debian" "$stage/debian"

# A native package: the packaging lives with the code, so the version is the project's.
if commit=$(git -C "$src" rev-parse --short=12 HEAD 2>/dev/null); then
  [ -z "$(git -C "$src" status --porcelain)" ] || commit="$commit plus uncommitted changes"
  date=$(git -C "$src" log -1 --format=%aD)
else
  commit="a source tree without git history"
  date=$(date -R)
fi
cat > "$stage/debian/changelog" <<CHANGELOG
evpn-enroll ($version) bookworm; urgency=medium

  * Built from $commit.

 -- evpn-enroll maintainers <evpn-enroll@example.org>  $date
CHANGELOG

if command -v ccache >/dev/null; then export EVPN_CMAKE_ARGS=-DCMAKE_CXX_COMPILER_LAUNCHER=ccache; fi
(cd "$stage" && dpkg-buildpackage -b -us -uc -j"$(nproc)")

changes=$(ls "$out"/evpn-enroll_"$version"_*.changes)
lintian --fail-on error,warning --info "$changes"
echo "lintian: no errors or warnings"
# The debug symbols go aside, so that build-pkg/*.deb is the two packages an admin installs.
mkdir -p "$out/dbgsym"
mv "$out"/*-dbgsym_*.deb "$out/dbgsym/"
ls -l "$out"/*.deb "$out"/dbgsym/*.deb
echo "$out"
