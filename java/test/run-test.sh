#!/bin/sh
# The JNI bindings' test: a fedrec-aggregator with its defaults (secure
# aggregation) on TCP, cohorts of 2, and ClientTest's two devices.
# Usage: run-test.sh BIN_DIR JAVA CLASSPATH JNI_DIR
set -eu
bin=$1 java=$2 cp=$3 jni=$4
work=$(mktemp -d)
agg_pid=
cleanup() {
    [ -n "$agg_pid" ] && kill "$agg_pid" 2>/dev/null && wait "$agg_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
"$bin/fedrec-keygen" --out "$work/agg" >/dev/null
# TCP on a free port: one device carries its own bytes over a Java socket.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="tcp://127.0.0.1:$port"
"$bin/fedrec-aggregator" --listen "$url" --key "$work/agg.key" \
    --items 200 --k 8 --clients-per-round 2 --min-clients 2 \
    >"$work/agg.log" 2>&1 &
agg_pid=$!
i=0
while ! grep -q "aggregator starting" "$work/agg.log" && [ $i -lt 100 ]; do
    sleep 0.05; i=$((i + 1))
done
if ! "$java" -Xcheck:jni -Djava.library.path="$jni" -cp "$cp" \
        org.fedrec.ClientTest "$url" "$work/agg.pub" "$work"; then
    echo "--- aggregator log:"; tail -20 "$work/agg.log"
    exit 1
fi
