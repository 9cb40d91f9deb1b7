#!/bin/sh
# The classic baselines next to the MF family on MovieLens 100K.
# Explicit: the official folds u1..u5 (train uN.base, test uN.test), RMSE
# and MAE. Implicit: leave-last-out of u.data by timestamp, HR@10 and
# NDCG@10 against 99 sampled negatives (the NCF protocol, as
# bench/implicit.sh). Prints one fedrec-train JSON summary per (algo,
# split), with "fold" added in front. Every run takes a few seconds.
# Env: FR_DATA_DIR (default ../shared/data/ml-100k from the repository
# root), FR_BUILD_DIR (default build), ALGOS / IALGOS to narrow the lists.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${FR_DATA_DIR:-$root/../shared/data/ml-100k}
build=${FR_BUILD_DIR:-$root/build}
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/bin/fedrec-train
for f in u1.base u1.test u2.base u2.test u3.base u3.test u4.base u4.test \
         u5.base u5.test u.data u.item; do
    if [ ! -r "$data/$f" ]; then
        echo "baselines.sh: MovieLens 100K file $f not found in $data" \
             "(set FR_DATA_DIR)" >&2
        exit 1
    fi
done
if [ ! -x "$bin" ]; then
    if [ ! -f "$build/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$build" --target fedrec-train -j2 >/dev/null
fi
# "default" is fedrec-train without --algo (BPMF for ratings, iALS for
# interactions).
algos=${ALGOS:-"itemmean usercf itemcf content default"}
ialgos=${IALGOS:-"pop usercf itemcf content default"}
tag() { sed -n '$p' | sed "s/^{/{\"fold\":\"$1\",/"; }
for a in $algos; do
    flag="--algo $a"
    [ "$a" = default ] && flag=""
    [ "$a" = content ] && flag="$flag --item-features $data/u.item"
    for f in 1 2 3 4 5; do
        # shellcheck disable=SC2086
        "$bin" --train "$data/u$f.base" --test "$data/u$f.test" $flag \
            --json | tag "u$f"
    done
done
for a in $ialgos; do
    flag="--algo $a"
    [ "$a" = default ] && flag=""
    [ "$a" = content ] && flag="$flag --item-features $data/u.item"
    # shellcheck disable=SC2086
    "$bin" --train "$data/u.data" --split leave-last-out --loss implicit \
        $flag --json | tag "leave-last-out"
done
