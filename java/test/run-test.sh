#!/bin/sh
# The JNI bindings' test: a fedrec-aggregator with its defaults (secure
# aggregation) on an ipc socket, cohorts of 2, and ClientTest's two devices.
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
url="ipc://$work/agg.ipc"
"$bin/fedrec-aggregator" --listen "$url" --key "$work/agg.key" \
    --items 200 --k 8 --clients-per-round 2 --min-clients 2 \
    >"$work/agg.log" 2>&1 &
agg_pid=$!
i=0
while [ ! -S "$work/agg.ipc" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if ! "$java" -Xcheck:jni -Djava.library.path="$jni" -cp "$cp" \
        org.fedrec.ClientTest "$url" "$work/agg.pub" "$work"; then
    echo "--- aggregator log:"; tail -20 "$work/agg.log"
    exit 1
fi
