#!/usr/bin/env bash
# Runs the real code paths under valgrind memcheck: the simulator (client
# library, aggregator core, wire codec and secure channel over NNG inproc)
# and the centralized trainer, on small synthetic data. Fails on any memory
# error or definite leak. ("Possibly lost" blocks are the stacks of NNG's
# and OpenBLAS's worker threads, which live until exit by design.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
dir=${FR_BUILD_DIR:-build}
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind missing" >&2; exit 1; }
vg=(valgrind -q --leak-check=full --show-possibly-lost=no
    --errors-for-leak-kinds=definite
    --error-exitcode=9)
"${vg[@]}" "$dir/bin/fedrec-sim" --synthetic users=60,items=40,seed=3 \
    --rounds 3 --transport inproc --threads 2 >/dev/null
"${vg[@]}" "$dir/bin/fedrec-sim" --synthetic users=40,items=30,seed=3 \
    --rounds 2 --algo grad --clip 1 --secure-agg full --transport direct \
    --threads 1 >/dev/null
# The private default (partial cohorts: VBMF latest statistics under
# SecAgg+) with the cold-start report, and a neighbourhood baseline.
"${vg[@]}" "$dir/bin/fedrec-sim" --synthetic users=60,items=40,density=0.8,seed=3 \
    --fraction 0.2 --rounds 2 --report cold-start --transport direct \
    --threads 1 >/dev/null
"${vg[@]}" "$dir/bin/fedrec-train" --synthetic users=100,items=50,seed=2 \
    >/dev/null
"${vg[@]}" "$dir/bin/fedrec-train" --synthetic users=100,items=50,seed=2 \
    --algo usercf >/dev/null
echo "valgrind: no errors"
