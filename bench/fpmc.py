#!/usr/bin/env python3
# A measurement, not a model of fedrec: FPMC (Rendle et al. 2010: MF plus a
# factorized transition from the previous item, trained with BPR) against
# the same code without the transition term, on ML-100K leave-last-out
# with 99 sampled negatives, to decide whether a sequence term should go
# into fedrec (issue 9 item 3; docs/BEHAVIOUR.md). numpy only, one thread.
# Usage: python3 bench/fpmc.py [val|test]   (val: the validation item, the
# one used to decide; test: the latest item). Env: FR_DATA_DIR.
# Prints one JSON line per model and setting.
import json, os, sys
import numpy as np
rng = np.random.default_rng(1)
here = os.path.dirname(os.path.abspath(__file__))
D = os.path.join(os.environ.get('FR_DATA_DIR',
                 os.path.join(here, '..', '..', 'shared', 'data', 'ml-100k')),
                 'u.data')
if not os.path.exists(D):
    sys.exit(f'fpmc.py: MovieLens 100K not found: {D} (set FR_DATA_DIR)')
a = np.loadtxt(D, dtype=np.int64)
u, i, r, t = a[:,0]-1, a[:,1]-1, a[:,2], a[:,3]
nu, ni = u.max()+1, i.max()+1
order = np.lexsort((np.arange(len(u)), t, u))   # by user, time, then line
u, i, t = u[order], i[order], t[order]
seqs = np.split(i, np.flatnonzero(np.diff(u))+1)
mode = sys.argv[1] if len(sys.argv) > 1 else 'val'
tr_seq, held, prev = [], [], []
for s in seqs:
    if mode == 'val':
        s = s[:-1]           # drop test item
    tr_seq.append(s[:-1]); held.append(s[-1]); prev.append(s[-2])
held = np.array(held); prev = np.array(prev)
seen = [set(s.tolist()) | {h} for s, h in zip(tr_seq, held)]
# transitions (u, l, i)
U, L, I = [], [], []
for uu, s in enumerate(tr_seq):
    for k in range(1, len(s)):
        U.append(uu); L.append(s[k-1]); I.append(s[k])
U, L, I = map(np.array, (U, L, I))
negs = np.empty((nu, 99), dtype=np.int64)
for uu in range(nu):
    c = np.setdiff1d(np.arange(ni), np.fromiter(seen[uu], dtype=np.int64))
    negs[uu] = rng.choice(c, 99, replace=False)

def train(k, use_mf, use_tr, epochs, lr, reg, seed):
    g = np.random.default_rng(seed)
    VUI = g.normal(0, .1, (nu, k)); VIU = g.normal(0, .1, (ni, k))
    VIL = g.normal(0, .1, (ni, k)); VLI = g.normal(0, .1, (ni, k))
    n = len(U); B = 256
    for ep in range(epochs):
        p = g.permutation(n)
        for b0 in range(0, n, B):
            idx = p[b0:b0+B]
            uu, ll, ii = U[idx], L[idx], I[idx]
            jj = g.integers(0, ni, len(idx))
            x = np.zeros(len(idx))
            if use_mf: x += np.sum(VUI[uu]*(VIU[ii]-VIU[jj]), 1)
            if use_tr: x += np.sum(VLI[ll]*(VIL[ii]-VIL[jj]), 1)
            w = (1/(1+np.exp(x)))[:,None]
            if use_mf:
                gu = w*(VIU[ii]-VIU[jj]) - reg*VUI[uu]
                gi = w*VUI[uu] - reg*VIU[ii]; gj = -w*VUI[uu] - reg*VIU[jj]
                np.add.at(VUI, uu, lr*gu); np.add.at(VIU, ii, lr*gi); np.add.at(VIU, jj, lr*gj)
            if use_tr:
                gl = w*(VIL[ii]-VIL[jj]) - reg*VLI[ll]
                gi = w*VLI[ll] - reg*VIL[ii]; gj = -w*VLI[ll] - reg*VIL[jj]
                np.add.at(VLI, ll, lr*gl); np.add.at(VIL, ii, lr*gi); np.add.at(VIL, jj, lr*gj)
    cand = np.concatenate([held[:,None], negs], 1)
    sc = np.zeros(cand.shape)
    if use_mf: sc += np.einsum('uk,uck->uc', VUI, VIU[cand])
    if use_tr: sc += np.einsum('uk,uck->uc', VLI[prev], VIL[cand])
    rank = (sc[:,1:] >= sc[:,:1]).sum(1)
    hit = rank < 10
    return hit.mean(), (hit/np.log2(rank+2)).mean()

for name, mf, trn in (('bpr-mf', 1, 0), ('fpmc', 1, 1), ('transition only', 0, 1)):
    for k, ep, lr, reg in ((32, 30, 0.05, 0.01), (64, 30, 0.05, 0.01)):
        h, n = train(k, mf, trn, ep, lr, reg, 7)
        print(json.dumps({'item': mode, 'model': name, 'k': k, 'epochs': ep,
                          'lr': lr, 'reg': reg, 'hr10': round(h, 4),
                          'ndcg10': round(n, 4)}), flush=True)
