"""The central-DP rows of docs/BENCHMARKS.md ("Privacy: defences against
the aggregator", flags of bench/privacy.sh) from Python: gradient FedAvg on
ML-100K u1, 40 rounds, cohort 50 of 943, clip 1, the aggregator noising
the sum with noise multiplier z; z = 0 is the "clip 1 (no noise)" row.

    PYTHONPATH=python python3 python/examples/dp_sweep.py DATA_DIR [z ...]

prints one JSON line per run and a Markdown table.
"""
import json
import os
import sys
import fedrec

data = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/ml-100k"
zs = [float(z) for z in sys.argv[2:]] or [0.0, 0.5, 0.665, 1.0, 2.0]
base = dict(train=os.path.join(data, "u1.base"),
            test=os.path.join(data, "u1.test"), algo="grad",
            server_opt="adam", lr=0.03, reg=2, reg_bias=1, rounds=40,
            clients_per_round=50, no_reference=True, transport="direct",
            eval_every=0, attack="both", clip=1)
rows = []
# z = 0 is no DP at all (the aggregator adds nothing), the others central DP.
if 0.0 in zs:
    rows += list(fedrec.sweep({"noise_multiplier": [None]}, **base))
    rows[-1]["sweep"] = {"noise-multiplier": "0"}
noisy = [z for z in zs if z > 0]
if noisy:
    rows += list(fedrec.sweep({"noise_multiplier": noisy}, dp="central",
                              **base))
print("| z | test RMSE | item AUC | rating recon. RMSE | epsilon |")
print("|---|---|---|---|---|")
for r in rows:
    s = r["summary"]
    print(json.dumps({"z": r["sweep"]["noise-multiplier"],
                      "config_hash": r["config_hash"], "seed": r["seed"],
                      "git": r["git"], "rmse": s["rmse"],
                      "attack_auc": s.get("attack_auc"),
                      "attack_rating_rmse": s.get("attack_rating_rmse"),
                      "epsilon": s.get("epsilon")}), file=sys.stderr)
    eps = s.get("epsilon")
    print(f"| {r['sweep']['noise-multiplier']} | {s['rmse']:.4f} | "
          f"{s['attack_auc']:.3f} | {s['attack_rating_rmse']:.3g} | "
          f"{'-' if eps is None or eps != eps else f'{eps:.2f}'} |")
