"""Rated-item inference written against the aggregator's view (the update
hook): score each item by the L2 norm of its rows in one plain update, and
measure the AUC of those scores against the items the device really rated.
This is fedrec-sim --attack items (sim/attack.c), re-done in Python:

    PYTHONPATH=python python3 python/examples/item_inference.py \
        TRAIN TEST [flag=value | switch ...]

prints the Python AUC next to the built-in attack_auc of the same run.
"""
import sys
import numpy as np
import fedrec


def train_items(path):
    """Each user's rated items, with the simulator's dense indices (users
    and items numbered by first appearance in the training file)."""
    users, items, rated = {}, {}, []
    with open(path) as f:
        for line in f:
            w = line.replace("::", " ").replace(",", " ").split()
            if len(w) < 3:
                continue
            u = users.setdefault(w[0], len(users))
            i = items.setdefault(w[1], len(items))
            if u == len(rated):
                rated.append(set())
            rated[u].add(i)
    return [np.array(sorted(s), dtype=np.int64) for s in rated]


def auc(scores, labels):
    """Mann-Whitney AUC; tied scores share their mean rank."""
    order = np.argsort(scores, kind="stable")
    _, first, count = np.unique(scores[order], return_index=True,
                                return_counts=True)
    mean_rank = np.repeat(first + (count + 1) / 2.0, count)
    pos = labels[order]
    n_pos = pos.sum()
    n_neg = len(pos) - n_pos
    return (mean_rank[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def item_inference(train, test, **flags):
    """Runs the simulation with the Python attack and the built-in one;
    returns (python AUC, built-in attack_auc, updates scored by each)."""
    rated = train_items(train)
    aucs = []
    with fedrec.Simulation(train=train, test=test, attack="items",
                           **flags) as sim:
        rounds, n_items = sim.rounds_total, sim.n_items
        every = int(flags.get("eval_every", 1))

        def hook(u):
            # The rounds the built-in attack scores: every eval round and
            # the last one.
            if not (u.round == rounds or (every and u.round % every == 0)):
                return
            truth = rated[u.device] if u.device < len(rated) else []
            if len(truth) == 0 or len(truth) >= n_items:
                return
            sq = np.zeros(n_items)
            np.add.at(sq, u.items, (u.rows.astype(np.float64) ** 2).sum(1))
            labels = np.zeros(n_items, dtype=bool)
            labels[truth] = True
            aucs.append(auc(np.sqrt(sq).astype(np.float32), labels))

        sim.set_update_hook(hook)
        summary = sim.run()
    return (float(np.mean(aucs)), summary["attack_auc"], len(aucs),
            summary["attack_users"])


if __name__ == "__main__":
    # name=value gives --name value; a bare name gives the switch --name.
    opts = dict((a.split("=", 1) + [True])[:2] for a in sys.argv[3:])
    ours, builtin, n, n_builtin = item_inference(sys.argv[1], sys.argv[2],
                                                 **opts)
    print(f"python_auc {ours:.6f} builtin_auc {builtin:.6f} "
          f"diff {abs(ours - builtin):.2e} updates {n} builtin {n_builtin}")
