#!/bin/sh
# Relation modelling (issue 10 item 6): does an item-graph term improve the
# federated default? Trains the federated default (VBMF, every device every
# round) on a validation split of u1.base (each user's ratings 80/20, seed
# 1) from Python, then smooths its item factors and biases over the item
# co-occurrence graph (the counts secure aggregation could deliver: c_ij =
# users who rated both): x_i <- (1 - a) x_i + a sum_j c_ij x_j / sum_j c_ij
# (one LightGCN-style propagation step), folds every user in again on the
# smoothed items (ridge on [p_u; b_u], the same fold-in for every a), and
# scores the held-out ratings. a is chosen on validation; the chosen a and
# a = 0 are then scored on u1.test with the model trained on all of
# u1.base. One JSON line per point, then the decision.
# Env: FR_DATA_DIR, FR_BUILD_DIR (build), FR_PYTHON (/usr/bin/python3).
set -eu
bench_name=relation.sh
. "$(dirname "$0")/lib.sh"
bench_need_ml100k
py=${FR_PYTHON:-/usr/bin/python3}
PYTHONPATH=$root/python FEDREC_BUILD_DIR=$build FR_REL_DATA=$data "$py" - <<'PY'
import json, os, tempfile
import numpy as np
import fedrec

data = os.environ["FR_REL_DATA"]

def load(path):
    a = np.loadtxt(path, dtype=np.int64)
    return a[:, 0], a[:, 1], a[:, 2].astype(np.float64)

def train(base, test):
    with fedrec.Simulation(train=base, test=test, no_reference=True,
                           transport="direct") as sim:
        sim.run()
        mu, bi, Q = sim.model()
        return sim, mu, bi.astype(np.float64), Q.astype(np.float64)

def item_index(base_u, base_i, test_u, test_i):
    # The simulator's dense ids: items in the order the files mention
    # them (train, then test).
    order = {}
    for i in list(base_i) + list(test_i):
        if i not in order:
            order[i] = len(order)
    return order

def score(mu, bi, Q, tr, te, order, lam=5.0):
    k = Q.shape[1]
    X = np.hstack([Q, np.ones((Q.shape[0], 1))])
    tu, ti, tr_r = tr
    eu, ei, er = te
    by_u = {}
    for u, i, r in zip(tu, ti, tr_r):
        by_u.setdefault(u, []).append((order[i], r))
    se, n = 0.0, 0
    fits = {}
    for u, i, r in zip(eu, ei, er):
        if u not in fits:
            rows = by_u.get(u, [])
            if not rows:
                fits[u] = np.zeros(k + 1)
            else:
                idx = np.array([j for j, _ in rows])
                y = np.array([v for _, v in rows]) - mu - bi[idx]
                A = X[idx].T @ X[idx] + lam * np.eye(k + 1)
                fits[u] = np.linalg.solve(A, X[idx].T @ y)
        j = order[i]
        p = mu + bi[j] + X[j] @ fits[u]
        p = min(max(p, 1.0), 5.0)
        se += (p - r) ** 2
        n += 1
    return float(np.sqrt(se / n))

def smooth(bi, Q, tr, order, a):
    tu, ti, _ = tr
    n = Q.shape[0]
    users = {}
    for u, i in zip(tu, ti):
        users.setdefault(u, []).append(order[i])
    C = np.zeros((n, n))
    for items in users.values():
        idx = np.array(items)
        C[np.ix_(idx, idx)] += 1.0
    np.fill_diagonal(C, 0.0)
    d = C.sum(axis=1, keepdims=True)
    W = np.divide(C, d, out=np.zeros_like(C), where=d > 0)
    X = np.hstack([Q, bi[:, None]])
    Y = (1 - a) * X + a * (W @ X)
    Y[d[:, 0] == 0] = X[d[:, 0] == 0]
    return Y[:, -1], Y[:, :-1]

# Validation: u1.base split per user 80/20 (seed 1).
bu, bi_, br = load(data + "/u1.base")
rng = np.random.default_rng(1)
val = np.zeros(len(bu), dtype=bool)
for u in np.unique(bu):
    ix = np.flatnonzero(bu == u)
    m = max(1, int(round(0.2 * len(ix)))) if len(ix) > 1 else 0
    val[rng.choice(ix, size=m, replace=False)] = True
tmp = tempfile.mkdtemp()
vtr, vte = tmp + "/vtrain", tmp + "/vtest"
np.savetxt(vtr, np.c_[bu[~val], bi_[~val], br[~val].astype(int)], fmt="%d")
np.savetxt(vte, np.c_[bu[val], bi_[val], br[val].astype(int)], fmt="%d")
tr = (bu[~val], bi_[~val], br[~val])
te = (bu[val], bi_[val], br[val])
order = item_index(*tr[:2], *te[:2])
sim, mu, bi, Q = train(vtr, vte)
best = (None, 1e9)
for a in [0.0, 0.05, 0.1, 0.2, 0.3, 0.5]:
    sb, sQ = smooth(bi, Q, tr, order, a) if a > 0 else (bi, Q)
    r = score(mu, sb, sQ, tr, te, order)
    print(json.dumps({"split": "validation", "a": a, "rmse": round(r, 5)}))
    if r < best[1] - 1e-5:
        best = (a, r)
# Test: u1.base / u1.test with the chosen a and without.
tr = load(data + "/u1.base")
te = load(data + "/u1.test")
order = item_index(*tr[:2], *te[:2])
sim, mu, bi, Q = train(data + "/u1.base", data + "/u1.test")
res = {}
for a in sorted({0.0, best[0]}):
    sb, sQ = smooth(bi, Q, tr, order, a) if a > 0 else (bi, Q)
    res[a] = score(mu, sb, sQ, tr, te, order)
    print(json.dumps({"split": "u1.test", "a": a, "rmse": round(res[a], 5)}))
print(json.dumps({"summary": True, "chosen_a": best[0],
                  "test_rmse_without": round(res[0.0], 5),
                  "test_rmse_with": round(res[best[0]], 5),
                  "improves": bool(best[0] > 0 and res[best[0]] < res[0.0])}))
PY
