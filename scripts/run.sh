#!/usr/bin/env bash
# The main job: builds fedrec, then runs fedrec-sim on the built-in seeded
# synthetic data. Every user is a virtual device with its own keys and
# private ratings, talking to the real aggregator over NNG inproc with the
# full handshake and XChaCha20-Poly1305 sealing. It prints the federated
# model's test accuracy next to the centralized fedrec-train result (same
# split, same hyperparameters) and writes metrics.csv, summary.json and SVG
# plots into ${FR_RUN_OUT:-sim-out}. Extra arguments go to fedrec-sim.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
dir=${FR_BUILD_DIR:-build}
out=${FR_RUN_OUT:-sim-out}
"$dir/bin/fedrec-sim" --transport inproc --out "$out" "$@"
echo "plots: $out/rmse.svg $out/mae.svg (open in a browser)"
