#!/usr/bin/env python3
# A measurement (issue 9 item 3, docs/BEHAVIOUR.md): fedrec's implicit
# default, iALS with recency weights (reimplemented in numpy: k 32, reg 50,
# alpha 5, confidence 1 + alpha r, the user side weighed 2^(-newer/3)),
# alone and with the transition term of bench/fpmc.py (trained alone by
# BPR) added to it (both scores standardized per user over the 100
# candidates, the transition's times lambda), in one harness with the
# same 99 negatives per user. Usage: python3 bench/fpmc_combo.py [val|test]
# (decide on val). Env: FR_DATA_DIR. One JSON line per model.
import json, os, sys
import numpy as np
_here = os.path.dirname(os.path.abspath(__file__))
exec(open(os.path.join(_here, 'fpmc.py')).read().split("for name, mf, trn in")[0])
rat = {}
a2 = np.loadtxt(D, dtype=np.int64)
for uu_, ii_, rr_, tt_ in a2: rat[(uu_-1, ii_-1)] = rr_
def ials(k=32, reg=50.0, alpha=5.0, sweeps=10, h=3.0, seed=3):
    g = np.random.default_rng(seed)
    X = g.normal(0, .1, (nu, k)); Y = g.normal(0, .1, (ni, k))
    rows = []
    for uu, s in enumerate(tr_seq):
        its = np.array(s); r = np.array([rat[(uu, j)] for j in its], float)
        n = len(its); newer = np.arange(n)[::-1]   # interactions newer than it
        w = 2.0 ** (-newer / h) if h > 0 else np.ones(n)
        rows.append((its, r, w))
    for sw in range(sweeps):
        YtY = Y.T @ Y
        for uu, (its, r, w) in enumerate(rows):
            c = 1 + alpha * r * w; Yi = Y[its]
            A = YtY + (Yi.T * (c - 1)) @ Yi + reg * np.eye(k)
            X[uu] = np.linalg.solve(A, (Yi.T * c).sum(1))
        XtX = X.T @ X
        A_acc = {}
        by_item = [[] for _ in range(ni)]
        for uu, (its, r, w) in enumerate(rows):
            for j, rr in zip(its, r): by_item[j].append((uu, rr))
        for j in range(ni):
            if not by_item[j]: Y[j] = 0; continue
            us = np.array([x[0] for x in by_item[j]]); c = 1 + alpha * np.array([x[1] for x in by_item[j]], float)
            Xu = X[us]
            A = XtX + (Xu.T * (c - 1)) @ Xu + reg * np.eye(k)
            Y[j] = np.linalg.solve(A, (Xu.T * c).sum(1))
    # final user fit with recency weights (as the device does)
    return X, Y
cand = np.concatenate([held[:,None], negs], 1)
def metrics(sc):
    rank = (sc[:,1:] >= sc[:,:1]).sum(1); hit = rank < 10
    return round(hit.mean(), 4), round((hit/np.log2(rank+2)).mean(), 4)
for h in (0.0, 3.0):
    X, Y = ials(h=h)
    base = np.einsum('uk,uck->uc', X, Y[cand])
    print(json.dumps({'model': f'ials recency {h}', 'hr_ndcg': metrics(base)}), flush=True)
    if h == 3.0: keep, Yk = base, Y
# transition-only BPR model scores
g = np.random.default_rng(7); k = 32
VIL = g.normal(0, .1, (ni, k)); VLI = g.normal(0, .1, (ni, k))
n = len(U); B = 256; lr = 0.05; reg = 0.01
for ep in range(30):
    p = g.permutation(n)
    for b0 in range(0, n, B):
        idx = p[b0:b0+B]; ll, ii = L[idx], I[idx]; jj = g.integers(0, ni, len(idx))
        x = np.sum(VLI[ll]*(VIL[ii]-VIL[jj]), 1); w = (1/(1+np.exp(x)))[:,None]
        gl = w*(VIL[ii]-VIL[jj]) - reg*VLI[ll]; gi = w*VLI[ll] - reg*VIL[ii]; gj = -w*VLI[ll] - reg*VIL[jj]
        np.add.at(VLI, ll, lr*gl); np.add.at(VIL, ii, lr*gi); np.add.at(VIL, jj, lr*gj)
trans = np.einsum('uk,uck->uc', VLI[prev], VIL[cand])
print(json.dumps({'model': 'transition only', 'hr_ndcg': metrics(trans)}), flush=True)
# standardize per user and combine
def z(s): return (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-9)
for lam in (0.1, 0.25, 0.5, 1.0):
    print(json.dumps({'model': f'ials+recency + {lam} transition', 'hr_ndcg': metrics(z(keep) + lam * z(trans))}), flush=True)
# The same with the transition tied to the item factors (fedrec's
# --transition): the similarity of each candidate to the mean of the last
# m items' factors, cosine or dot product.
for m in (1, 2, 3):
    last = np.stack([np.array([s[-j] if len(s) >= j else s[-1] for s in tr_seq])
                     for j in range(1, m + 1)], 1)
    prof = Yk[last].mean(1)
    dot = np.einsum('uk,uck->uc', prof, Yk[cand])
    cos = dot / (np.linalg.norm(prof, axis=1)[:, None]
                 * np.linalg.norm(Yk[cand], axis=2) + 1e-9)
    for lam in ((0.25, 0.5, 1.0, 1.5, 2.0, 3.0) if m == 1 else (1.0,)):
        print(json.dumps({'model': f'ials+recency + {lam} tied, last {m}',
                          'cos': metrics(z(keep) + lam * z(cos)),
                          'dot': metrics(z(keep) + lam * z(dot))}), flush=True)
