#!/usr/bin/env bash
# fedrec-sim --mpi at scale (issue 12): USERS registered virtual devices
# (default 10,000,000) over RANKS MPI ranks (default 2) on this machine,
# ROUNDS rounds (3) of COHORT devices (10,000), gradient FedAvg (per-round
# sums: what a tree carries today). Every rank holds the whole population
# (each loads or generates the data), so the memory per registered device
# is the sum of the ranks' peak RSS divided by USERS. Prints one JSON line.
# Env: FR_BUILD_DIR, USERS, RANKS, ROUNDS, COHORT, DENSITY (0.0005).
set -eu
bench_name=mpi.sh
. "$(dirname "$0")/lib.sh"
sim=$(bench_tool fedrec-sim)
users=${USERS:-10000000}; ranks=${RANKS:-2}; rounds=${ROUNDS:-3}
cohort=${COHORT:-10000}; density=${DENSITY:-0.0005}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s.%N)
mpirun --oversubscribe -np "$ranks" /usr/bin/time -f 'rss_kib %M' \
    "$sim" --mpi --synthetic "users=$users,items=20000,density=$density,seed=3" \
    --clients-per-round "$cohort" --rounds "$rounds" --algo grad --no-reference \
    --shared-model --eval-users 10000 --json >"$tmp/out" 2>"$tmp/err"
t1=$(date +%s.%N)
rss=$(grep -o 'rss_kib [0-9]*' "$tmp/err" | awk '{s += $2} END {print s}')
tail -1 "$tmp/out" | jq -c --argjson ranks "$ranks" --argjson rss "$rss" \
    --argjson wall "$(echo "$t1 - $t0" | bc)" \
    '{bench: "mpi", ranks: $ranks, registered: .n_clients, ratings: .n_train,
      rounds, clients_per_round: (.clients / .rounds), rounds_abandoned,
      rmse, wall_s: $wall, rss_kib_all_ranks: $rss,
      bytes_per_registered_device: ($rss * 1024 / .n_clients)}'
