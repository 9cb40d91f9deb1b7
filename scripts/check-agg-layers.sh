#!/usr/bin/env bash
# Checks the aggregator's layering (the table at the top of
# aggregator/agg_int.h) against the built objects: every call from one of
# its files to another (an undefined symbol of one object defined by
# another) must go to a lower layer. Prints the cross-file call graph and
# exits 1 on a call that goes sideways or up, or on a file the table lacks.
# Usage: scripts/check-agg-layers.sh [build dir]   (after a build)
set -euo pipefail
cd "$(dirname "$0")/.."
objs=${1:-build}/aggregator/CMakeFiles/fr_agg_core.dir
[ -d "$objs" ] || { echo "no objects in $objs: build first" >&2; exit 2; }
declare -A layer def
# "//   N  a.c b.c   comment" lines of the table.
while read -r n files; do
  for f in $files; do
    case $f in *.c) layer[$f]=$n ;; *) break ;; esac
  done
done < <(sed -n 's|^//  *\([0-9]\)  *\(.*\)$|\1 \2|p' aggregator/agg_int.h)
bad=0
for o in "$objs"/*.o; do
  f=$(basename "$o" .o)
  if [ -z "${layer[$f]:-}" ]; then
    echo "not in the layer table: aggregator/$f" >&2
    bad=1
  fi
  for s in $(nm --defined-only -g "$o" | awk '$2 ~ /[TDBR]/ {print $3}'); do
    def[$s]=$f
  done
done
edges=$(for o in "$objs"/*.o; do
  f=$(basename "$o" .o)
  for s in $(nm -u "$o" | awk '{print $2}'); do
    t=${def[$s]:-}
    if [ -n "$t" ] && [ "$t" != "$f" ]; then echo "$f $t $s"; fi
  done
done | sort)
while read -r f t s; do
  [ -n "$f" ] || continue
  lf=${layer[$f]:-}; lt=${layer[$t]:-}
  if [ -n "$lf" ] && [ -n "$lt" ] && [ "$lt" -ge "$lf" ]; then
    echo "layer violation: $f ($lf) calls $t ($lt): $s" >&2
    bad=1
  fi
done <<< "$edges"
# Includes: a file includes the header of its own layer's file or of
# lower layers only (a header is its .c file's: x.h is x.c's, rounds.h
# agg.c's, counters.h metrics.c's), and aggregator headers include each
# other without a cycle.
hdr_of() {
  case $1 in
    rounds.h) echo agg.c ;;
    counters.h) echo metrics.c ;;
    *) echo "${1%.h}.c" ;;
  esac
}
hedges=""
for src in aggregator/*.c aggregator/*.h; do
  f=$(basename "$src")
  for h in $(sed -n 's/^#include "\([a-z_]*\.h\)".*/\1/p' "$src"); do
    [ -f "aggregator/$h" ] || continue
    case $f in
      *.h) hedges+="$f $h"$'\n' ;;
      *.c)
        c=$(hdr_of "$h"); lf=${layer[$f]:-}; lc=${layer[$c]:-}
        if [ "$c" != "$f" ] && [ -n "$lf" ] && [ -n "$lc" ] &&
           [ "$lc" -ge "$lf" ]; then
          echo "layer violation: $f ($lf) includes $h of $c ($lc)" >&2
          bad=1
        fi ;;
    esac
  done
done
if ! printf '%s' "$hedges" | tsort >/dev/null 2>&1; then
  echo "include cycle among aggregator headers:" >&2
  printf '%s' "$hedges" | tsort 2>&1 >/dev/null | sed 's/^/  /' >&2
  bad=1
fi
# The graph, one line per caller -> callee file.
awk '{k=$1" -> "$2; a[k]=a[k]" "$3} END {for (k in a) print k":"a[k]}' \
  <<< "$edges" | sort
[ $bad = 0 ] && echo "aggregator layering: ok"
exit $bad
