#!/bin/sh
# fedrec-sim --mpi (sim/tree.h): two ranks, each an edge aggregator for
# half of the devices, rank 0 also the root they report to over NNG tcp,
# train the model one process trains: every round's RMSE equal to float
# tolerance, every device counted, no round lost. Robust bounds are off:
# in a tree each edge keeps them from its own devices' history.
# Usage: mpi.sh FEDREC_SIM MPIEXEC
set -eu
sim=$1
mpiexec=$2
# Open MPI refuses root unless told (CI machines run as root).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common="--synthetic users=300,items=120,k=4,density=0.08,seed=5 --no-reference --json --model-format fp32 --robust off"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# compare NAME ARGS...: one process against 2 ranks.
compare() {
    name=$1
    shift
    "$sim" $common "$@" >"$tmp/one" 2>"$tmp/one.err" ||
        fail "$name: one process: $(cat "$tmp/one.err")"
    "$mpiexec" --oversubscribe -np 2 "$sim" --mpi $common "$@" \
        >"$tmp/two" 2>"$tmp/two.err" ||
        fail "$name: mpirun -np 2: $(tail -5 "$tmp/two.err")"
    for f in one two; do
        grep -o '"round":[0-9]*,"rmse":[0-9][0-9.]*' "$tmp/$f" |
            sed 's/"round":\([0-9]*\),"rmse":/\1 /' >"$tmp/$f.r"
        grep '"summary":true' "$tmp/$f" |
            grep -o '"rounds_abandoned":[0-9]*\|"clients":[0-9]*\|"checkins":[0-9]*\|"model_reads":[0-9]*' |
            tr '\n' ' ' >"$tmp/$f.s"
    done
    [ -s "$tmp/two.r" ] || fail "$name: the ranks printed no rounds"
    [ "$(wc -l <"$tmp/one.r")" = "$(wc -l <"$tmp/two.r")" ] ||
        fail "$name: $(wc -l <"$tmp/one.r") rounds against $(wc -l <"$tmp/two.r")"
    paste "$tmp/one.r" "$tmp/two.r" | awk -v n="$name" '
        { d = $2 - $4; if (d < 0) d = -d
          if ($1 != $3 || d > 2e-6) { print "FAIL: " n ": round " $1 " RMSE " $2 " one process, " $4 " two ranks"; bad = 1 } }
        NR == 1 { first = $4 } { last = $4 }
        END { if (!bad && last == first) { print "FAIL: " n ": the model did not move (" first " -> " last ")"; bad = 1 }
              exit bad }'
    [ "$(cat "$tmp/one.s")" = "$(cat "$tmp/two.s")" ] ||
        fail "$name: summary counts differ: $(cat "$tmp/one.s") / $(cat "$tmp/two.s")"
    grep -q '"rounds_abandoned":0' "$tmp/two.s" || fail "$name: a round was lost"
    echo "ok: $name ($(tail -1 "$tmp/two.r"))"
}

# The default algorithm with every device every round (VBMF), devices on
# inproc NNG to their edge.
compare vbmf --rounds 4
# Partial cohorts with dropouts: gradient FedAvg.
compare grad-partial --algo grad --fraction 0.2 --dropout 0.1 --rounds 4 --eval-every 1 \
    --transport direct
# Secure aggregation within each rank's edge (its own cohort's masks;
# the root takes the unmasked sums): SecAgg+ with dropouts, and full
# SecAgg of explicit ALS statistics.
compare grad-secagg-plus --algo grad --clip 1 --fraction 0.2 --dropout 0.2 \
    --rounds 3 --eval-every 1 --transport direct --secure-agg plus
compare als-secagg-full --algo als --secure-agg full --stats-latest 0 \
    --rounds 3 --transport direct

# What a tree cannot carry yet is refused with a reason, on every rank.
if "$mpiexec" --oversubscribe -np 2 "$sim" --mpi $common --fraction 0.2 \
    >"$tmp/out" 2>"$tmp/err"; then
    fail "partial cohorts with latest statistics were not refused"
fi
grep -q "does not carry item statistics across rounds" "$tmp/err" ||
    fail "no reason given: $(head -3 "$tmp/err")"
echo "ok: refused with a reason"
