#!/usr/bin/env bash
# Installs the Debian packages fedrec builds with, if any are missing.
# Needs root (apt-get); does nothing when everything is present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsodium-dev libnng-dev
      libopenblas-dev libcriterion-dev)
# The Python bindings (python/fedrec) and their ctest test.
pkgs+=(python3 python3-numpy)
# clang brings libFuzzer for the fuzz smoke run; optional elsewhere.
[ "${FR_WITH_FUZZ:-0}" = 1 ] && pkgs+=(clang libclang-rt-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "fedrec: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
