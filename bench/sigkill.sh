#!/usr/bin/env bash
# SIGKILL of fedrec-aggregator at random points, RUNS times (default 20),
# alternating plain ALS rounds and secure-aggregation rounds
# (--secure-agg full). Each run: start the aggregator on its --state dir,
# start 3 devices (fedrec-client, training continuously), SIGKILL the
# aggregator after a random 0.3-3 s while the devices are mid-training,
# restart it 0.3 s later on the same --state and port, and check that it
# resumes: checkpoint loaded, model version not behind the last one
# served before the kill, and AFTER_ROUNDS (default 3) rounds completed by
# the same devices within 60 s. The devices learn of the restart from the
# refusals of their old sessions (the restarted aggregator's no_session /
# late counters, reported). Prints one JSON line per run and a summary.
# Env: FR_BUILD_DIR (default build), RUNS (default 20), SEED.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${FR_BUILD_DIR:-build}
runs=${RUNS:-20}
rounds=1000
after=${AFTER_ROUNDS:-3}
RANDOM=${SEED:-$$}
for t in fedrec-aggregator fedrec-client fedrec-keygen; do
  [ -x "$dir/bin/$t" ] || { echo "build $dir/bin/$t first" >&2; exit 2; }
done
work=$(mktemp -d /tmp/fr-kill-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"; }
trap cleanup EXIT
"$dir/bin/fedrec-keygen" --out "$work/agg" >/dev/null
for u in 1 2 3; do for i in $(seq 0 29); do
  [ $(((u + i) % 3)) -ne 0 ] && echo "$u $i $((1 + (u * i) % 5))"; done; done >"$work/ratings.txt"

start_agg() { # mode port log
  local extra
  if [ "$1" = secure ]; then
    extra="--algo grad --clip 1 --secure-agg full --state $work/state-sa"
  else
    extra="--algo als --state $work/state-als"
  fi
  # shellcheck disable=SC2086
  "$dir/bin/fedrec-aggregator" --listen "tcp://127.0.0.1:$2" --key "$work/agg.key" \
    --items 30 --k 3 --clients-per-round 3 --min-clients 2 --round-deadline 3 \
    --retry-after 0.2 --log-level info --http "127.0.0.1:$(($2 + 1))" \
    $extra 2>>"$3" &
  agg=$!; pids+=("$agg")
}
clients() { # port rounds -> sets cpids
  cpids=()
  for u in 1 2 3; do
    timeout 120 "$dir/bin/fedrec-client" --connect "tcp://127.0.0.1:$1" \
      --server-key "$work/agg.pub" --ratings "$work/ratings.txt" --user $u \
      --rounds "$2" --timeout-ms 2000 >>"$work/c$u.log" 2>&1 &
    cpids+=($!); pids+=($!)
  done
}
# The version last served: "round closed" is logged before its checkpoint
# is written, and the model is served only from the next "round opened".
version_of() { grep -o 'round opened.*model_version=[0-9]*' "$1" | grep -o 'model_version=[0-9]*' | tail -1 | cut -d= -f2; }

ok_runs=0; sa_runs=0; sa_ok=0; active_kills=0
for r in $(seq 1 "$runs"); do
  mode=plain; [ $((r % 2)) -eq 0 ] && mode=secure
  port=$((24000 + 2 * (RANDOM % 4000)))
  log1="$work/run$r-a.log"; log2="$work/run$r-b.log"
  start_agg $mode $port "$log1"
  sleep 0.3
  clients $port "$rounds"
  delay_ms=$((300 + RANDOM % 2700))
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  active=0; for p in "${cpids[@]}"; do kill -0 "$p" 2>/dev/null && active=$((active + 1)); done
  phase=$(grep -o 'msg="[^"]*"' "$log1" | tail -1 | tr -d '"' | sed 's/msg=//')
  v_before=$(version_of "$log1"); v_before=${v_before:-0}
  kill -9 $agg; wait $agg 2>/dev/null
  [ $active -gt 0 ] && active_kills=$((active_kills + 1))
  sleep 0.3
  start_agg $mode $port "$log2"
  sleep 0.5
  up=0; kill -0 $agg 2>/dev/null && up=1
  loaded=0; grep -q 'checkpoint loaded\|no checkpoint' "$log2" && loaded=1
  v_after=$(grep -o 'checkpoint loaded.*model_version=[0-9]*' "$log2" | grep -o 'model_version=[0-9]*' | cut -d= -f2)
  v_after=${v_after:-0}
  closed=0
  for _ in $(seq 1 600); do # 60 s
    closed=$(grep -c 'round closed' "$log2")
    [ "$closed" -ge "$after" ] && break
    sleep 0.1
  done
  early=0
  for p in "${cpids[@]}"; do kill -0 "$p" 2>/dev/null || early=$((early + 1)); done
  metrics=$(curl -s --max-time 2 "127.0.0.1:$((port + 1))/metrics")
  nosess=$(echo "$metrics" | awk '/reason="no_session"/ {print $2}'); nosess=${nosess:-0}
  late=$(echo "$metrics" | awk '/reason="late"/ {print $2}'); late=${late:-0}
  for p in "${cpids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  kill -TERM $agg 2>/dev/null; wait $agg 2>/dev/null
  abandoned=$(grep -c 'round abandoned' "$log2")
  pass=0
  # Resumed: restarted on its state, not behind the last served model, and
  # training went on with the same devices.
  [ $up -eq 1 ] && [ $loaded -eq 1 ] && [ "$closed" -ge "$after" ] && [ "$v_after" -ge "$v_before" ] && pass=1
  ok_runs=$((ok_runs + pass))
  if [ $mode = secure ]; then sa_runs=$((sa_runs + 1)); sa_ok=$((sa_ok + pass)); fi
  echo "{\"run\":$r,\"mode\":\"$mode\",\"kill_after_ms\":$delay_ms,\"devices_active_at_kill\":$active,\"last_event\":\"$phase\",\"version_logged_before_kill\":$v_before,\"version_resumed\":$v_after,\"restarted\":$up,\"state_loaded\":$loaded,\"refused_after_restart\":{\"no_session\":$nosess,\"late\":$late},\"rounds_closed_after_restart\":$closed,\"rounds_abandoned_after_restart\":$abandoned,\"devices_exited_early\":$early,\"pass\":$pass}"
done
echo "{\"runs\":$runs,\"passed\":$ok_runs,\"kills_with_devices_active\":$active_kills,\"secure_runs\":$sa_runs,\"secure_passed\":$sa_ok}"
