#!/usr/bin/env bash
# Ingest of one aggregator against a tree of a root and two edges on this
# machine (docs/DEPLOY-TREE.md). fedrec-bench-ingest opens CONNS concurrent
# device check-ins (handshake, CHECKIN, GET_MODEL, ALS UPDATE over every
# one of ITEMS items): all against one aggregator, or half against each
# edge of the tree (two load generators at once). Prints one JSON line per
# setup: check-ins per second over the whole wave, and the CPU seconds
# (user + system, from /proc) each process used during it, so the scaling
# (or its absence) is visible on a 2-core machine where the load
# generators share the cores with the aggregators.
# Env: FR_BUILD_DIR (build), CONNS (2000), ITEMS (200), K (16), RUNS (3),
# PORT (27600).
set -eu
bench_name=scale.sh
. "$(dirname "$0")/lib.sh"
agg=$(bench_tool fedrec-aggregator)
gen=$(bench_tool fedrec-bench-ingest)
kg=$(bench_tool fedrec-keygen)
conns=${CONNS:-2000}; items=${ITEMS:-200}; k=${K:-16}; port=${PORT:-27600}
tmp=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
for n in root e1 e2; do "$kg" --out "$tmp/$n" >/dev/null; done
for e in e1 e2; do
    od -An -tx1 -j8 -N64 "$tmp/$e.pub" | tr -d ' \n'; echo
    "$kg" --edge-pin "$tmp/$e.pub" --root "$tmp/root.pub" --out "$tmp/dev-$e" >/dev/null
done > "$tmp/edges.allow"
common="--items $items --k $k --algo als --robust off --round-deadline 600 --log-level warn --max-sessions 100000 --contexts 256"
# cpu PID: user + system clock ticks so far.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
up() { # wait until 127.0.0.1:$1 accepts
    i=0; while ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "$bench_name: port $1 not up" >&2; exit 1; }
        sleep 0.05; done
}
# gen_run NAME ARGS: runs the load generator, its JSON in NAME.json and
# its CPU seconds (user + system, from the subshell's `times`) in NAME.cpu.
gen_run() {
    n=$1; shift
    (
        "$gen" "$@" >"$tmp/$n.json"
        times >"$tmp/$n.times" # not in a pipeline: that would be a subshell
        tail -1 "$tmp/$n.times" | awk '{ split($1, u, /[ms]/);
            split($2, t, /[ms]/); print u[1] * 60 + u[2] + t[1] * 60 + t[2] }' \
            >"$tmp/$n.cpu"
    )
}
run=0
while [ $run -lt "${RUNS:-3}" ]; do
    run=$((run + 1))
    # One aggregator.
    "$agg" --listen "tcp://127.0.0.1:$port" --key "$tmp/root.key" $common 2>"$tmp/single.log" &
    s=$!; pids="$pids $s"
    up "$port"
    c0=$(cpu "$s")
    gen_run g --conns "$conns" --connect "tcp://127.0.0.1:$port" --server-key "$tmp/root.pub" \
        --items "$items"
    c1=$(cpu "$s")
    kill "$s"; wait "$s" 2>/dev/null || true
    jq -c --argjson run $run --argjson ca "$(( c1 - c0 ))" --argjson cg "$(cat "$tmp/g.cpu")" --argjson hz "$hz" \
        '{setup: "single", run: $run, conns, ok, seconds, checkins_per_s,
          cpu_s: {aggregator: ($ca / $hz), load_generator: $cg}}' "$tmp/g.json"
    # Root and two edges.
    "$agg" --listen "tcp://127.0.0.1:$port" --key "$tmp/root.key" --allow "$tmp/edges.allow" \
        --root-max-devices 1000000 --clients-per-round 2 $common 2>"$tmp/root.log" &
    r=$!; pids="$pids $r"
    up "$port"
    for e in 1 2; do
        "$agg" --listen "tcp://127.0.0.1:$((port + e))" --key "$tmp/e$e.key" \
            --upstream "tcp://127.0.0.1:$port" --upstream-key "$tmp/root.pub" $common --log-level info \
            2>"$tmp/e$e.log" &
        eval "e$e=\$!"; pids="$pids $!"
        up $((port + e))
    done
    # Both edges serve the root's round before the wave starts.
    i=0; until grep -q "round opened from the root" "$tmp/e1.log" && grep -q "round opened from the root" "$tmp/e2.log"; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "$bench_name: edges did not open a round" >&2; exit 1; }; sleep 0.05; done
    r0=$(cpu $r); a0=$(cpu $e1); b0=$(cpu $e2)
    t0=$(date +%s.%N)
    gen_run g1 --conns $((conns / 2)) --connect "tcp://127.0.0.1:$((port + 1))" \
        --server-key "$tmp/dev-e1.pub" --items "$items" &
    g1=$!
    gen_run g2 --conns $((conns / 2)) --connect "tcp://127.0.0.1:$((port + 2))" \
        --server-key "$tmp/dev-e2.pub" --items "$items" &
    g2=$!
    wait $g1; wait $g2
    t1=$(date +%s.%N)
    r1=$(cpu $r); a1=$(cpu $e1); b1=$(cpu $e2)
    kill $e1 $e2 $r; wait $e1 $e2 $r 2>/dev/null || true
    jq -s -c --argjson run $run --arg w "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
        --argjson cr "$(( r1 - r0 ))" --argjson c1 "$(( a1 - a0 ))" --argjson c2 "$(( b1 - b0 ))" \
        --argjson cg "$(awk '{s += $1} END {print s}' "$tmp/g1.cpu" "$tmp/g2.cpu")" --argjson hz "$hz" \
        '{setup: "root+2edges", run: $run, conns: (map(.conns) | add), ok: (map(.ok) | add),
          seconds: (map(.seconds) | max),
          checkins_per_s: ((map(.conns) | add) / (map(.seconds) | max)),
          cpu_s: {root: ($cr / $hz), edge1: ($c1 / $hz), edge2: ($c2 / $hz),
                  load_generators: $cg}}' "$tmp/g1.json" "$tmp/g2.json"
    pids=""
done
