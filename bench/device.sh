#!/usr/bin/env bash
# Device footprint: the size (text/data/bss, `size` of the stripped archive)
# of libfedrec-client.a per target, for the lean core (-DFR_LEAN=ON: no NNG,
# no BLAS) and the full client (NNG + OpenBLAS), and of a minimal program
# linking it (client/examples/recommend.c, static libfedrec-client, shared
# libc/libsodium, --gc-sections). Prints JSON on stdout.
#   bench/device.sh [native] [aarch64] [armhf]     (default: all three)
# Cross targets need what scripts/cross-test.sh installs (run it once).
# Build folders: build-size-<target>-<variant>.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(native aarch64 armhf)
jobs=${FR_JOBS:-2}

# "text data bss" of the stripped file (archive: summed over its members).
sizes() { # size-tool file
  "$1" -t "$2" | tail -n 1 | awk '{print $1, $2, $3}'
}

first=1
echo "["
for t in "${targets[@]}"; do
  case "$t" in
    native) triplet="" tc=() ;;
    aarch64) triplet=aarch64-linux-gnu ;;
    armhf) triplet=arm-linux-gnueabihf ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  if [ -n "$triplet" ]; then
    tc=(-DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/toolchains/$triplet.cmake")
    cc=$triplet-gcc strip=$triplet-strip size=$triplet-size
  else
    cc=cc strip=strip size=size
  fi
  for variant in lean full; do
    dir=build-size-$t-$variant
    if [ "$variant" = lean ]; then
      opts=(-DFR_LEAN=ON) libs=(-lsodium -lm -lpthread)
    else
      opts=(-DFR_BUILD_SERVER=OFF) libs=(-lnng -lopenblas -lsodium -lm -lpthread)
    fi
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DFR_BUILD_TESTS=OFF \
      "${tc[@]}" "${opts[@]}" >/dev/null
    cmake --build "$dir" --target fr_client -j "$jobs" >/dev/null
    lib=$(find "$dir" -name libfedrec-client.a | head -n 1)
    "$strip" --strip-unneeded -o "$dir/libfedrec-client.stripped.a" "$lib"
    read -r ltext ldata lbss < <(sizes "$size" "$dir/libfedrec-client.stripped.a")
    "$cc" -O2 -I client/include -I common/include -I "$dir/include" \
      -o "$dir/recommend" client/examples/recommend.c "$lib" "${libs[@]}" \
      -Wl,--gc-sections -s
    read -r ptext pdata pbss < <(sizes "$size" "$dir/recommend")
    [ $first -eq 1 ] || echo ","
    first=0
    printf '  {"target": "%s", "variant": "%s", "lib_stripped_bytes": %s, ' \
      "$t" "$variant" "$(stat -c %s "$dir/libfedrec-client.stripped.a")"
    printf '"lib_text": %s, "lib_data": %s, "lib_bss": %s, ' "$ltext" "$ldata" "$lbss"
    printf '"example_text": %s, "example_data": %s, "example_bss": %s}' \
      "$ptext" "$pdata" "$pbss"
  done
done
echo
echo "]"
