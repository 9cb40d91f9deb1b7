# Independent reference for fedrec-train --algo usercf: user-based kNN with
# cosine similarity over co-rated items, k = 40, Surprise KNNBasic semantics
# (global-mean fallback), in plain Python without the C code or numpy.
# Usage: python3 bench/usercf_ref.py uN.base uN.test  (about 20 s a fold)
import sys, math, heapq
from collections import defaultdict
tr, te = sys.argv[1], sys.argv[2]
ur = defaultdict(dict); ir = defaultdict(dict)
for l in open(tr):
    u,i,r,_ = l.split(); r=float(r); ur[u][i]=r; ir[i][u]=r
mu = sum(r for d in ur.values() for r in d.values())/sum(len(d) for d in ur.values())
users = list(ur)
sim = {}
for u in users:
    dot=defaultdict(float); sa=defaultdict(float); sb=defaultdict(float)
    for i,r in ur[u].items():
        for v,rv in ir[i].items():
            if v==u: continue
            dot[v]+=r*rv; sa[v]+=r*r; sb[v]+=rv*rv
    sim[u]={v: dot[v]/math.sqrt(sa[v]*sb[v]) for v in dot}
se=ae=0; n=0
for l in open(te):
    u,i,r,_=l.split(); r=float(r)
    est=mu
    if u in ur and i in ir:
        cand=[(sim[u].get(v,0.0), rv) for v,rv in ir[i].items()]
        top=heapq.nlargest(40,cand,key=lambda t:t[0])
        ss=sum(s for s,_ in top if s>0); sr=sum(s*x for s,x in top if s>0)
        if ss>0: est=sr/ss
    est=min(5,max(1,est))
    se+=(est-r)**2; ae+=abs(est-r); n+=1
print(tr, "rmse %.4f mae %.4f"%(math.sqrt(se/n), ae/n))
