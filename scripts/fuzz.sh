#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -DFR_FUZZ=ON) and runs each for N
# seconds (default 20), seeded with the golden vectors. Exits non-zero if a
# target finds a crash. Usage: scripts/fuzz.sh [SECONDS]
# Env: FR_FUZZ_BUILD_DIR (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
dir=${FR_FUZZ_BUILD_DIR:-build-fuzz}
CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DFR_FUZZ=ON \
  -DFR_BUILD_TESTS=OFF -DFR_BUILD_SIM=OFF >/dev/null
targets=$(ls tests/fuzz/fuzz_*.c | xargs -n1 basename | sed 's/\.c$//')
known=$(cmake --build "$dir" --target help 2>/dev/null || true)
status=0
for t in $targets; do
  if ! grep -q "\.\.\. $t\$" <<<"$known"; then
    echo "$t: skipped (no CMake target defines it)" >&2
    continue
  fi
  cmake --build "$dir" -j 2 --target "$t" >/dev/null || true
  exe="$dir/fuzz/$t"
  [ -x "$exe" ] || { echo "$t: not built" >&2; status=1; continue; }
  corpus="$dir/corpus/$t"
  mkdir -p "$corpus"
  # Seeds: the golden vectors (prefixed with each selector byte for
  # fuzz_frame, as is for the others).
  for v in tests/vectors/*.bin; do
    b=$(basename "$v" .bin)
    if [ "$t" = fuzz_frame ]; then
      for s in 0 1 2 3 4 5 6; do
        { printf "\\x0$s"; cat "$v"; } > "$corpus/${b}_$s"
      done
    else
      cp "$v" "$corpus/$b"
    fi
  done
  log="$dir/$t.log"
  if "$exe" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
       -artifact_prefix="$dir/" "$corpus" >"$log" 2>&1; then
    echo "$t: ok, $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
  else
    echo "$t: FAILED (see $log)" >&2
    tail -30 "$log" >&2
    status=1
  fi
done
exit $status
