#!/bin/sh
# The research workbench on ML-100K u1 (docs/BENCHMARKS.md, "Research
# workbench"): (1) a run driven from Python (fedrec.simulate over
# libfedrec-sim) against fedrec-sim with the same flags: final RMSE of each
# and their difference; (2) the cost of a Python update hook that reads
# every update (numpy views of its items and rows, summed) with every one
# of the 943 devices in every round: median wall time of FR_WB_REPS runs
# with and without it (alternated), in the same process. Prints one JSON
# line per part. Env: FR_DATA_DIR, FR_BUILD_DIR (build), FR_WB_ROUNDS (5),
# FR_WB_REPS (5), FR_PYTHON (/usr/bin/python3).
set -eu
bench_name=workbench.sh
. "$(dirname "$0")/lib.sh"
bin=$(bench_tool fedrec-sim)
bench_need_ml100k
py=${FR_PYTHON:-/usr/bin/python3}
rounds=${FR_WB_ROUNDS:-5}
reps=${FR_WB_REPS:-5}
# --threads 1: one device at a time, so that the floating-point sums are
# added in the same order in both runs (2 threads may change the 6th digit).
flags="--train $data/u1.base --test $data/u1.test --rounds $rounds
 --no-reference --transport direct --threads 1"
# shellcheck disable=SC2086
cli=$("$bin" $flags --json | tail -1)
PYTHONPATH=$root/python FEDREC_BUILD_DIR=$build FR_WB_CLI=$cli \
FR_WB_DATA=$data FR_WB_ROUNDS=$rounds FR_WB_REPS=$reps "$py" - <<'PY'
import json, os, statistics, time
import fedrec

data, rounds = os.environ["FR_WB_DATA"], int(os.environ["FR_WB_ROUNDS"])
reps = int(os.environ["FR_WB_REPS"])
cli = json.loads(os.environ["FR_WB_CLI"])
opts = dict(train=f"{data}/u1.base", test=f"{data}/u1.test", rounds=rounds,
            no_reference=True, transport="direct", threads=1)
s = fedrec.simulate(**opts)
print(json.dumps({"part": "python_vs_cli", "rounds": rounds,
                  "algo": s["algo"], "rmse_python": s["rmse"],
                  "rmse_cli": cli["rmse"],
                  "abs_diff": abs(s["rmse"] - cli["rmse"]),
                  "equal_1e6": abs(s["rmse"] - cli["rmse"]) <= 1e-6}))

# Hook overhead: the default threads (2), every device every round. Wall
# time is what the target is about; on a shared machine it is noisy, so
# the process CPU time (every thread) and the time spent inside the hook
# are reported too.
opts["threads"] = 2
seen = [0, 0.0, 0.0]

def hook(u):
    t0 = time.perf_counter()
    seen[0] += 1
    seen[1] += float(u.rows.sum()) + float(u.items.sum())
    seen[2] += time.perf_counter() - t0

def timed(with_hook):
    with fedrec.Simulation(**opts) as sim:
        if with_hook:
            sim.set_update_hook(hook)
        t0, c0 = time.perf_counter(), time.process_time()
        sim.run()
        return (time.perf_counter() - t0, time.process_time() - c0,
                sim.summary)

plain, hooked, cpu_p, cpu_h, inside = [], [], [], [], []
for _ in range(reps):
    t, c, summ = timed(False)
    plain.append(t)
    cpu_p.append(c)
    seen[:] = [0, 0.0, 0.0]
    t, c, summ_h = timed(True)
    hooked.append(t)
    cpu_h.append(c)
    inside.append(seen[2])
    updates = seen[0]
med = statistics.median
mp, mh = med(plain), med(hooked)
print(json.dumps({"part": "python_hook_overhead", "rounds": rounds,
                  "devices_per_round": summ["clients"] // rounds,
                  "updates_seen_per_run": updates,
                  "updates_in_run": summ_h["clients"],
                  "rmse_plain": summ["rmse"], "rmse_hook": summ_h["rmse"],
                  "seconds_plain": plain, "seconds_hook": hooked,
                  "median_plain": mp, "median_hook": mh,
                  "overhead_wall": mh / mp - 1.0,
                  "cpu_plain": cpu_p, "cpu_hook": cpu_h,
                  "overhead_cpu": med(cpu_h) / med(cpu_p) - 1.0,
                  "seconds_inside_hook": med(inside),
                  "us_inside_hook_per_update": med(inside) / updates * 1e6,
                  "inside_hook_share_of_plain": med(inside) / mp}))
PY
