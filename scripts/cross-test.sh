#!/usr/bin/env bash
# Cross-builds the device side (common, proto, client and their tests) for
# an ARM target with Debian's cross compiler and multiarch libraries, and
# runs the tests under qemu-user:
#   scripts/cross-test.sh aarch64|armhf [extra cmake arguments, e.g. -DFR_LEAN=ON]
# Installs what is missing (needs root or sudo). Build folder:
# ${FR_BUILD_DIR:-build-<target>}. See docs/DEVICES.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-}
case "$target" in
  aarch64) arch=arm64 triplet=aarch64-linux-gnu ;;
  armhf) arch=armhf triplet=arm-linux-gnueabihf ;;
  *) echo "usage: $0 aarch64|armhf [cmake args...]" >&2; exit 2 ;;
esac
shift

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
bash scripts/install-deps.sh # the host's compiler, cmake, pkg-config

# Target libraries. Criterion is NOT among them: Debian 12's
# libcriterion-dev:arm64 conflicts with the host's libcriterion-dev:amd64
# (installing one removes the other, breaking the native build) and there
# is none for armhf. The cross tests build against tests/support/
# criterion_lite (FR_TEST_RUNNER=lite), the subset of Criterion's API they
# use. --no-remove: apt fails rather than remove any installed package.
pkgs=("gcc-$triplet" "libc6-dev-$arch-cross" qemu-user "libsodium-dev:$arch" "libnng-dev:$arch"
      "libopenblas-dev:$arch")
runner=lite
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "fedrec: installing ${missing[*]}" >&2
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    $SUDO dpkg --add-architecture "$arch"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends --no-remove "${missing[@]}" >/dev/null
fi

dir=${FR_BUILD_DIR:-build-$target}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="${FR_BUILD_TYPE:-Release}" \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/$triplet.cmake" \
  -DFR_BUILD_SERVER=OFF -DFR_TEST_RUNNER=$runner "$@" >/dev/null
cmake --build "$dir" -j "${FR_JOBS:-2}" >/dev/null
# What was built, as the loader sees it (ELF class, machine).
file "$dir/tests/proto_test_msg" 2>/dev/null || true
ctest --test-dir "$dir" --output-on-failure -j "${FR_JOBS:-2}"
