#!/usr/bin/env bash
# Installs the Debian packages fedrec builds with, if any are missing.
# Needs root (apt-get); does nothing when everything is present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libsodium-dev libnng-dev
      libopenblas-dev libcriterion-dev)
# OpenSSL's ChaCha20 expands secure-aggregation masks on hosts (the same
# keystream as libsodium's, about 3x faster; FR_WITH_OPENSSL).
pkgs+=(libssl-dev)
# The Python bindings (python/fedrec) and their ctest test.
pkgs+=(python3 python3-numpy)
# fedrec-sim --mpi: Open MPI runs the ranks of a spread simulation and
# their collectives (sim/mpi_group.c) and its ctest test under mpirun.
pkgs+=(libopenmpi-dev openmpi-bin)
# The JNI bindings (java/) and their test: Debian's OpenJDK.
pkgs+=(default-jdk-headless)
# clang checks the Clang module map Swift imports (tests/client/
# header-langs.sh); with libclang-rt-dev it brings libFuzzer for the fuzz
# smoke run.
pkgs+=(clang)
[ "${FR_WITH_FUZZ:-0}" = 1 ] && pkgs+=(libclang-rt-dev)
missing=()
arch=$(dpkg --print-architecture)
for p in "${pkgs[@]}"; do
  # Installed for this machine's architecture (a cross build may have put
  # a foreign-architecture copy of the same -dev package there).
  dpkg-query -W -f='${Status} ${Architecture}\n' "$p" 2>/dev/null |
    grep -Eq "ok installed ($arch|all)\$" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "fedrec: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
# A mirror caught mid-sync fails some index (often of a foreign
# architecture); the install below then says whether what we need is there.
$SUDO apt-get update -qq ||
  echo "fedrec: apt-get update reported errors; installing anyway" >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
