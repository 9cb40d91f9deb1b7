#!/bin/sh
# Would model deltas pay? (issue 11 item 3.) Runs the private default on
# ML-100K u1 (--fraction 0.1 --dropout 0.1) from Python, keeps the
# aggregator's item model after every round, and measures for a device
# that last downloaded g rounds ago how many item rows changed by more
# than half an int8 step of the row (what an I8C row can resolve: a row
# that moved less would be sent unchanged). A sparse delta must send every
# such row with its index; a full I8C model sends all of them. Prints one
# JSON line per gap (rounds >= FR_DELTA_FROM only, the converged part of
# the run) and one with the expectation under the gap distribution of
# partial cohorts (geometric with the cohort fraction: mean 1/fraction).
# Env: FR_DATA_DIR, FR_BUILD_DIR (build), FR_DELTA_FROM (20),
# FR_PYTHON (/usr/bin/python3), EXTRA (more flags as key=value,...).
set -eu
bench_name=deltas.sh
. "$(dirname "$0")/lib.sh"
bench_need_ml100k
py=${FR_PYTHON:-/usr/bin/python3}
PYTHONPATH=$root/python FEDREC_BUILD_DIR=$build FR_DELTA_DATA=$data \
FR_DELTA_FROM=${FR_DELTA_FROM:-20} "$py" - <<'PY'
import json, os
import numpy as np
import fedrec

data = os.environ["FR_DELTA_DATA"]
start = int(os.environ["FR_DELTA_FROM"])
frac = 0.1
models = {}
with fedrec.Simulation(train=data + "/u1.base", test=data + "/u1.test",
                       fraction=str(frac), dropout="0.1",
                       no_reference=True) as sim:
    k = sim.k
    while not sim.finished:
        sim.step()
        models[sim.rounds_run] = sim.model()
    rmse = sim.summary["rmse"]

def changed(v, g):
    _, b, q = models[v]
    _, b0, q0 = models[v - g]
    step = np.abs(q).max(axis=1) / 127.0     # the I8C row's int8 step
    moved = np.maximum(np.abs(q - q0).max(axis=1), np.abs(b - b0))
    return float((moved > 0.5 * step).mean())

last = max(models)
gaps = [1, 2, 5, 10, 20]
share = {}
for g in gaps:
    vs = [v for v in models if v >= start and v - g in models]
    share[g] = sum(changed(v, g) for v in vs) / len(vs)
    print(json.dumps({"gap_rounds": g, "rows_changed": round(share[g], 4),
                      "rounds_scored": len(vs)}))
# Expected over the gaps of partial cohorts: P(g) = frac (1 - frac)^(g-1);
# gaps beyond those measured count as 1 (every row changed at g = 20).
exp, mass = 0.0, 0.0
for g in range(1, 21):
    p = frac * (1 - frac) ** (g - 1)
    vs = [v for v in models if v >= start and v - g in models]
    exp += p * sum(changed(v, g) for v in vs) / len(vs)
    mass += p
exp += 1.0 - mass
# A sparse delta row: its u32 index, f16 bias, f16 scale, k int8.
full = 2 + 2 + k
delta = 4 + 2 + 2 + k
print(json.dumps({"summary": True, "rounds": last, "rmse": rmse, "k": k,
                  "fraction": frac,
                  "expected_rows_changed": round(exp, 4),
                  "delta_vs_full_i8c_bytes": round(exp * delta / full, 4)}))
PY
