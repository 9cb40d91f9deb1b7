#!/bin/sh
# The standard implicit protocol on MovieLens 100K (u.data): leave-last-out
# by timestamp, the held-out item ranked among 99 sampled negatives (NCF),
# HR@10 and NDCG@10. Prints JSON lines, one per run, each tagged with
# "model" and "stage":
#   grid   iALS hyperparameters scored on the validation item (the
#          second-to-last interaction; trained without it and the last)
#   val    a chosen model on the validation item
#   test   a chosen model on the test item (trained on everything else)
# BPR runs with its validation-chosen defaults. The iALS setting with the best validation NDCG@10 (ties: HR@10) is then
# run on test, next to popularity, the default iALS, and federated iALS
# (fedrec-sim, every client every round) with its default and with the
# validation-chosen setting. The test item never chooses anything.
# Env: FR_DATA_DIR (default ../shared/data/ml-100k from the repository
# root), FR_BUILD_DIR (default build), FR_NEGATIVES (default 99),
# FR_QUICK=1 (a 4-point grid, for a smoke run).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${FR_DATA_DIR:-$root/../shared/data/ml-100k}
build=${FR_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
neg=${FR_NEGATIVES:-99}
train=$build/bin/fedrec-train
sim=$build/bin/fedrec-sim
if [ ! -x "$train" ] || [ ! -x "$sim" ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$build" --target fedrec-train fedrec-sim -j2 >/dev/null
fi
file=$data/u.data
if [ ! -r "$file" ]; then
    echo "implicit.sh: $file not found (set FR_DATA_DIR)" >&2
    exit 1
fi
common="--train $file --split leave-last-out --negatives $neg --json"

# tag MODEL STAGE: prefixes the last JSON line of stdin with the tags.
tag() {
    tail -n 1 | sed "s/^{/{\"model\":\"$1\",\"stage\":\"$2\",/"
}

# Popularity.
"$train" $common --loss implicit --algo pop --eval val | tag pop val
"$train" $common --loss implicit --algo pop --eval test | tag pop test

# BPR with its defaults (chosen on the validation item: lr 0.05, reg 0.01,
# k 64, 60 epochs, from lr 0.02/0.05/0.1 x reg 0.001/0.01/0.03 x 30/60).
"$train" $common --loss implicit --algo bpr --eval val | tag bpr val
"$train" $common --loss implicit --algo bpr --eval test | tag bpr test

# iALS grid on the validation item.
if [ "${FR_QUICK:-0}" = 1 ]; then
    ks="32"; regs="5 50"; alphas="2 5"; epochs="10"
else
    ks="32 64"; regs="2 5 10 20 50"; alphas="2 5 10"; epochs="10 20"
fi
grid=""
for k in $ks; do for r in $regs; do for a in $alphas; do for e in $epochs; do
    line=$("$train" $common --loss implicit --eval val --k "$k" --reg "$r" \
        --alpha "$a" --epochs "$e" | tag ials grid)
    echo "$line"
    grid="$grid$k $r $a $e $line
"
done; done; done; done
best=$(printf '%s' "$grid" | awk '
function num(s, key,   i, t) {
    i = index(s, "\"" key "\":"); if (i == 0) return -1
    t = substr(s, i + length(key) + 3); sub(/[,}].*/, "", t); return t + 0
}
{
    nd = num($0, "ndcg10"); hr = num($0, "hr10")
    if (nd > bnd || (nd == bnd && hr > bhr)) { bnd = nd; bhr = hr; b = $1 " " $2 " " $3 " " $4 }
}
END { print b }')
set -- $best
bk=$1; br=$2; ba=$3; be=$4

"$train" $common --loss implicit --eval test --k "$bk" --reg "$br" \
    --alpha "$ba" --epochs "$be" | tag ials_tuned test
"$train" $common --loss implicit --eval val | tag ials_default val
"$train" $common --loss implicit --eval test | tag ials_default test

# Federated iALS: every user a device, every client every round.
"$sim" $common --loss implicit --no-progress --quiet | tag fed_ials_default test
"$sim" $common --loss implicit --no-progress --quiet --k "$bk" --reg "$br" \
    --alpha "$ba" --rounds "$be" | tag fed_ials_tuned test
