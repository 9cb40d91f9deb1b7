#!/usr/bin/env bash
# End-to-end numbers over tcp loopback; prints one JSON object on stdout
# (progress on stderr):
#  - rounds: fedrec-aggregator and FR_E2E_CLIENTS (50) fedrec-client
#    processes, FR_E2E_ROUNDS rounds each, full cohorts; rounds per second
#    (median of FR_E2E_RUNS runs), round latency from the aggregator log,
#    bytes per client per round up/down (client --json and /status);
#  - ingest: fedrec-bench-ingest, dense 1682 x 33 gradient UPDATEs from many
#    sessions through fri_agg_handle on 2 threads vs raw XChaCha20-Poly1305
#    decryption of the same bytes;
#  - conns: 1000 concurrent check-ins, each on its own REQ socket and TCP
#    connection, against one aggregator (median of FR_E2E_RUNS, errors
#    summed).
# Env: FR_BUILD_DIR (default build), FR_E2E_CLIENTS, FR_E2E_ROUNDS,
# FR_E2E_RUNS, FR_E2E_DEADLINE (round deadline in s, default 1),
# FR_E2E_CONNS (1000), FR_E2E_PERF=1 (perf profile of the ingest phase).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FR_BUILD_DIR:-build}
bin=$dir/bin
nc=${FR_E2E_CLIENTS:-50}
nr=${FR_E2E_ROUNDS:-10}
runs=${FR_E2E_RUNS:-3}
deadline=${FR_E2E_DEADLINE:-1}
conns=${FR_E2E_CONNS:-1000}
items=100

need="fedrec-aggregator fedrec-client fedrec-keygen fedrec-bench-ingest"
for t in $need; do
  if [ ! -x "$bin/$t" ]; then
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
    # shellcheck disable=SC2086
    cmake --build "$dir" --target $need -j 2 >/dev/null
    break
  fi
done

tmp=$(mktemp -d /tmp/fr-e2e-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
# The aggregator and the load generator hold one descriptor per connection.
ulimit -n 8192 2>/dev/null || true

"$bin/fedrec-keygen" --out "$tmp/agg" >/dev/null
# Deterministic ratings: user u rates 2/3 of the items, 1..5.
awk -v nu="$nc" -v ni="$items" 'BEGIN {
  for (u = 1; u <= nu; u++)
    for (i = 0; i < ni; i++)
      if ((u * 7 + i * 13) % 3 != 0) print u, i, 1 + (u * i + u + i) % 5
}' >"$tmp/ratings.txt"

# Below the ephemeral range (32768+) that the 1000 client sockets draw from.
port=$((20000 + (RANDOM % 6000) * 2))
http=$((port + 1))

# Starts the aggregator with extra flags; waits for /status.
start_agg() {
  "$bin/fedrec-aggregator" --listen "tcp://127.0.0.1:$port" \
    --key "$tmp/agg.key" --http "127.0.0.1:$http" --items "$items" \
    --algo als --k 8 --retry-after 0.05 "$@" >"$tmp/agg.log" 2>&1 &
  agg=$!
  pids+=("$agg")
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$http/status" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "aggregator did not start:" >&2
  cat "$tmp/agg.log" >&2
  exit 1
}

stop_agg() {
  kill "$agg" 2>/dev/null || true
  wait "$agg" 2>/dev/null || true
}

now() { date +%s.%N; }

# ---- rounds with nc client processes ---------------------------------------
for r in $(seq "$runs"); do
  echo "e2e: rounds run $r/$runs ($nc clients x $nr rounds)" >&2
  start_agg --clients-per-round "$nc" --min-clients "$nc" \
    --round-deadline "$deadline"
  t0=$(now)
  cl=()
  for u in $(seq "$nc"); do
    "$bin/fedrec-client" --connect "tcp://127.0.0.1:$port" \
      --server-key "$tmp/agg.pub" --ratings "$tmp/ratings.txt" --user "$u" \
      --rounds "$nr" --timeout-ms 10000 --json >"$tmp/c$u.json" \
      2>"$tmp/c$u.err" &
    cl+=($!)
  done
  fail=0
  for p in "${cl[@]}"; do wait "$p" || fail=$((fail + 1)); done
  t1=$(now)
  curl -sf "http://127.0.0.1:$http/status" >"$tmp/status$r.json"
  stop_agg
  cat "$tmp"/c*.json | jq -s --argjson t0 "$t0" --argjson t1 "$t1" \
    --argjson fail "$fail" --slurpfile st "$tmp/status$r.json" --rawfile \
    log "$tmp/agg.log" '
    def med: sort | if length == 0 then null
      else .[(length / 2 | floor)] end;
    ($st[0]) as $s |
    # round latency: "round opened" -> "round closed" of the same round
    ([$log | split("\n")[] | capture("ts=(?<ts>[^ ]+) .*msg=\"round (?<ev>opened|closed)\" round=(?<r>[0-9]+)")?]
      | map(.t = (.ts | sub("\\.(?<ms>[0-9]+)Z$"; "Z") | fromdateiso8601)
                  + ((.ts | capture("\\.(?<ms>[0-9]+)Z$").ms | tonumber) / 1000))
      | group_by(.r) | map(select(length == 2))
      | map(((map(select(.ev == "closed"))[0].t) - (map(select(.ev == "opened"))[0].t)) * 1000))
      as $lat |
    {clients: length, failed_clients: $fail,
     rounds_completed: $s.rounds_completed,
     rounds_abandoned: $s.rounds_abandoned,
     seconds: ($t1 - $t0),
     rounds_per_s: ($s.rounds_completed / ($t1 - $t0)),
     round_ms_median: ($lat | med),
     round_ms_min: ($lat | min),
     client_up_bytes_per_round: (map(.bytes_up / .rounds) | med),
     client_down_bytes_per_round: (map(.bytes_down / .rounds) | med),
     agg_in_bytes_per_update: ($s.bytes_in_total / $s.updates_accepted_total),
     agg_out_bytes_per_update: ($s.bytes_out_total / $s.updates_accepted_total),
     updates_accepted: $s.updates_accepted_total}' >"$tmp/rounds$r.json"
  rm -f "$tmp"/c*.json
done
jq -s 'sort_by(.rounds_per_s) | .[(length / 2 | floor)]
       + {runs: length, rounds_per_s_all: map(.rounds_per_s)}' \
  "$tmp"/rounds*.json >"$tmp/rounds.json"

# ---- ingest ---------------------------------------------------------------
echo "e2e: ingest" >&2
"$bin/fedrec-bench-ingest" --runs 5 --updates 512 --threads 2 \
  >"$tmp/ingest.json"
# FR_E2E_PERF=1: where the ingest time goes (perf recording only the
# fri_agg_handle phase, one thread), top symbols on stderr.
if [ "${FR_E2E_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
  mkfifo "$tmp/ctl" "$tmp/ack"
  FR_PERF_CTL=$tmp/ctl FR_PERF_ACK=$tmp/ack perf record -q -D -1 \
    --control "fifo:$tmp/ctl,$tmp/ack" -o "$tmp/perf.data" \
    "$bin/fedrec-bench-ingest" --runs 5 --updates 512 --threads 1 \
    >/dev/null 2>&1 || true
  perf report -i "$tmp/perf.data" --no-children --sort dso 2>/dev/null |
    grep -E '^ +[0-9]' >&2 || true
  perf report -i "$tmp/perf.data" --no-children --sort dso,symbol 2>/dev/null |
    grep -E '^ +[0-9]' | head -15 >&2 || true
fi

# ---- 1000 concurrent connections ------------------------------------------
for r in $(seq "$runs"); do
  echo "e2e: $conns concurrent check-ins, run $r/$runs" >&2
  start_agg --round-deadline 600 --contexts 128
  "$bin/fedrec-bench-ingest" --conns "$conns" \
    --connect "tcp://127.0.0.1:$port" --server-key "$tmp/agg.pub" \
    --items "$items" >"$tmp/conns$r.json" || true
  curl -sf "http://127.0.0.1:$http/status" >"$tmp/cstatus$r.json"
  stop_agg
  jq --slurpfile st "$tmp/cstatus$r.json" \
    '. + {agg_updates_accepted: $st[0].updates_accepted_total}' \
    "$tmp/conns$r.json" >"$tmp/conns$r.x.json"
done
jq -s 'sort_by(.checkins_per_s) | .[(length / 2 | floor)]
       + {runs: length, errors_total: (map(.errors) | add)}' \
  "$tmp"/conns*.x.json >"$tmp/conns.json"

jq -n --slurpfile a "$tmp/rounds.json" --slurpfile b "$tmp/ingest.json" \
  --slurpfile c "$tmp/conns.json" \
  '{rounds: $a[0], ingest: $b[0], conns: $c[0]}'
