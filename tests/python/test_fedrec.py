"""The fedrec Python package over libfedrec-sim: a run from Python gives
what fedrec-sim gives with the same flags; the object API steps, reports,
returns the model and raises clear errors.

Run by ctest with PYTHONPATH=python, FEDREC_BUILD_DIR and FR_BIN_DIR set.
A missing python3-numpy or library is a failure, never a skip.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import unittest

try:
    import numpy as np
except ImportError:
    sys.exit("FAIL: python3-numpy is missing (scripts/install-deps.sh "
             "installs it; Debian: apt-get install python3-numpy)")

import fedrec

SYNTH = "users=80,items=50,k=3,density=0.2,seed=5"
BIN = os.environ.get("FR_BIN_DIR", "")


def cli(*args):
    """fedrec-sim --json ARGS: the round lines and the summary line."""
    exe = os.path.join(BIN, "fedrec-sim")
    p = subprocess.run([exe, *args, "--json"], capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f"fedrec-sim failed: {p.stderr}")
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    return lines[:-1], lines[-1]


def write_ratings(folder):
    """A small explicit ratings pair in MovieLens' tab format."""
    tr = os.path.join(folder, "train.tsv")
    te = os.path.join(folder, "test.tsv")
    with open(tr, "w") as ft, open(te, "w") as fe:
        for u in range(1, 41):
            for i in range(1, 31):
                r = 1 + ((u % 3) * (i % 4) + u + 2 * i) % 5
                if (u * 7 + i * 3) % 4:
                    ft.write(f"{u}\t{i}\t{r}\t{1000 + i}\n")
                elif (u + i) % 3 == 0:
                    fe.write(f"{u}\t{i}\t{r}\t{1000 + i}\n")
    return tr, te


class SameAsCli(unittest.TestCase):
    def test_synthetic_rmse_per_round(self):
        opts = dict(synthetic=SYNTH, rounds=4, algo="als", no_reference=True,
                    threads=1, seed=9, transport="direct")
        with fedrec.Simulation(**opts) as sim:
            ours = list(sim)
            summary = sim.summary
        rounds, last = cli("--synthetic", SYNTH, "--rounds", "4", "--algo",
                           "als", "--no-reference", "--threads", "1",
                           "--seed", "9", "--transport", "direct")
        self.assertEqual(len(ours), 4)
        self.assertEqual([m["round"] for m in ours], [1, 2, 3, 4])
        for a, b in zip(ours, rounds):
            self.assertAlmostEqual(a["rmse"], b["rmse"], delta=1e-6)
            self.assertEqual(a["clients"], b["clients"])
            self.assertEqual(a["bytes_up"], b["bytes_up"])
        self.assertAlmostEqual(summary["rmse"], last["rmse"], delta=1e-6)
        self.assertGreater(summary["rmse"], 0.1)

    def test_files_simulate(self):
        with tempfile.TemporaryDirectory() as d:
            tr, te = write_ratings(d)
            s = fedrec.simulate(train=tr, test=te, rounds=3,
                                no_reference=True, seed=3)
            _, last = cli("--train", tr, "--test", te, "--rounds", "3",
                          "--no-reference", "--seed", "3")
        self.assertEqual(s["summary"], True)
        self.assertEqual(s["rounds"], 3)
        self.assertEqual(s["algo"], last["algo"])
        self.assertAlmostEqual(s["rmse"], last["rmse"], delta=1e-6)
        self.assertAlmostEqual(s["mae"], last["mae"], delta=1e-6)


class ObjectApi(unittest.TestCase):
    def test_steps_model_hash(self):
        opts = dict(synthetic=SYNTH, rounds=3, no_reference=True, seed=9,
                    algo="als", transport="direct")
        sim = fedrec.Simulation(**opts)
        self.assertEqual(sim.rounds_total, 3)
        self.assertEqual((sim.n_users, sim.n_items), (80, 50))
        self.assertFalse(sim.finished)
        self.assertEqual(sim.step(), [])  # round 1 is scored in round 2
        got = sim.step()
        self.assertEqual([m["round"] for m in got], [1])
        self.assertEqual(sim.rounds_run, 2)
        with self.assertRaises(fedrec.FedrecError) as cm:
            sim.summary
        self.assertEqual(cm.exception.name, "FR_ESTATE")
        got = sim.step()
        self.assertEqual([m["round"] for m in got], [2, 3])
        self.assertTrue(sim.finished)
        with self.assertRaises(fedrec.FedrecError) as cm:
            sim.step()
        self.assertEqual(cm.exception.name, "FR_ECLOSED")
        exact = sim.round_metrics(3)
        self.assertAlmostEqual(exact["rmse"], sim.metrics(3)["rmse"],
                               delta=1e-6)
        self.assertTrue(math.isnan(exact["hr10"]))
        mu, bi, Q = sim.model()
        self.assertEqual(bi.shape, (50,))
        self.assertEqual(Q.shape, (50, sim.k))
        self.assertEqual(Q.dtype, np.float32)
        self.assertTrue(np.all(np.isfinite(Q)) and np.abs(Q).sum() > 0)
        self.assertTrue(1.0 < mu < 5.0)
        h = sim.model_hash
        self.assertIn("federated:   test RMSE", sim.summary_text())
        with tempfile.TemporaryDirectory() as d:
            sim.write_outputs(d)
            self.assertTrue(os.path.exists(os.path.join(d, "metrics.csv")))
        sim.close()
        with self.assertRaises(ValueError):
            sim.step()
        # Same options, same model; another seed, another model.
        with fedrec.Simulation(**opts) as again:
            again.run()
            self.assertEqual(again.model_hash, h)
            np.testing.assert_array_equal(again.model()[2], Q)
        opts["seed"] = 10
        with fedrec.Simulation(**opts) as other:
            other.run()
            self.assertNotEqual(other.model_hash, h)

    def test_errors(self):
        with self.assertRaises(fedrec.FedrecError) as cm:
            fedrec.simulate(rounds=0)
        self.assertEqual(cm.exception.name, "FR_EINVAL")
        self.assertIn("--rounds: invalid value '0'", str(cm.exception))
        with self.assertRaises(fedrec.FedrecError) as cm:
            fedrec.simulate(no_such_flag=3)
        self.assertIn("unknown option --no-such-flag", str(cm.exception))
        with self.assertRaises(fedrec.FedrecError) as cm:
            fedrec.simulate(train="/nonexistent/a", test="/nonexistent/b")
        self.assertIn("/nonexistent/a", str(cm.exception))
        with self.assertRaises(TypeError):
            fedrec.simulate(rounds=[1, 2])
        # False leaves a switch out: this run would fail with --json=...
        s = fedrec.simulate(synthetic=SYNTH, rounds=1, no_reference=True,
                            json=False, state=None)
        self.assertEqual(s["rounds"], 1)

    def test_sweep_same_as_cli(self):
        base = dict(synthetic=SYNTH, rounds=2, no_reference=True, algo="als",
                    transport="direct", threads=1)
        runs = list(fedrec.sweep({"k": [2, 4], "seed": [1, 2]}, **base))
        p = subprocess.run(
            [os.path.join(BIN, "fedrec-sim"), "--synthetic", SYNTH,
             "--rounds", "2", "--no-reference", "--algo", "als",
             "--transport", "direct", "--threads", "1", "--sweep", "k=2,4",
             "--sweep", "seed=1,2"], capture_output=True, text=True,
            timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        cli_runs = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertEqual(len(runs), 4)
        self.assertEqual(len(cli_runs), 4)
        for a, b in zip(runs, cli_runs):
            for key in ("run", "sweep", "config", "config_hash", "seed",
                        "version", "git"):
                self.assertEqual(a[key], b[key], key)
            self.assertAlmostEqual(a["summary"]["rmse"],
                                   b["summary"]["rmse"], delta=1e-6)
        self.assertEqual([r["sweep"]["k"] for r in runs],
                         ["2", "2", "4", "4"])
        self.assertEqual(len({r["config_hash"] for r in runs}), 4)


class Hooks(unittest.TestCase):
    OPTS = dict(synthetic=SYNTH, rounds=3, no_reference=True, algo="als",
                seed=9, threads=2)

    def test_reads_every_update(self):
        per_round, devices = {}, set()
        shapes = set()

        def hook(u):
            per_round[u.round] = per_round.get(u.round, 0) + 1
            devices.add(u.device)
            shapes.add((u.rows.shape[1], u.items.dtype.name,
                        u.rows.dtype.name))
            self.assertEqual(u.rows.shape[0], len(u.items))
            self.assertEqual(len(u.key), 32)

        with fedrec.Simulation(**self.OPTS) as sim:
            sim.set_update_hook(hook)
            sim.run()
            for r in (1, 2, 3):
                self.assertEqual(per_round[r], sim.metrics(r)["clients"])
            h = sim.model_hash
        self.assertEqual(devices, set(range(80)))
        self.assertEqual(shapes, {(11, "uint32", "float32")})
        with fedrec.Simulation(**self.OPTS) as plain:
            plain.run()
            self.assertEqual(plain.model_hash, h)

    def test_raising_hook_stops_the_run(self):
        calls = []

        def hook(u):
            calls.append(u.round)
            if u.round == 2:
                raise ValueError("boom")

        sim = fedrec.Simulation(**self.OPTS)
        sim.set_update_hook(hook)
        with self.assertRaises(fedrec.FedrecError) as cm:
            sim.run()
        e = cm.exception
        self.assertEqual(e.name, "FR_EINTERNAL")
        self.assertIn("stopped the run in round 2", str(e))
        self.assertIn("ValueError('boom')", str(e))
        self.assertIsInstance(e.__cause__, ValueError)
        self.assertEqual(calls.count(2), 1)  # not called after the raise
        self.assertEqual(max(calls), 2)
        with self.assertRaises(fedrec.FedrecError) as cm:
            sim.step()
        self.assertEqual(cm.exception.name, "FR_ESTATE")
        self.assertFalse(sim.finished)
        mu, _, Q = sim.model()  # still answers
        self.assertTrue(np.all(np.isfinite(Q)))
        sim.close()
        # Nothing leaks into the next run.
        with fedrec.Simulation(**self.OPTS) as a, \
                fedrec.Simulation(**self.OPTS) as b:
            a.set_update_hook(lambda u: None)
            a.run()
            b.run()
            self.assertEqual(a.model_hash, b.model_hash)

    def test_device_hook_defence(self):
        def run(fn):
            with fedrec.Simulation(**self.OPTS) as sim:
                if fn is not None:
                    sim.set_device_hook(fn)
                s = sim.run()
                return s, sim.model_hash

        plain, h0 = run(None)
        devices = set()

        def identity(u):
            devices.add(u.device)
            self.assertEqual(u.rows.shape, (len(u.items), 11))
            self.assertFalse(u.items.flags.writeable)

        same, h1 = run(identity)
        self.assertEqual(h1, h0)
        self.assertEqual(devices, set(range(80)))

        def shrink(u):  # a defence: scale every row
            u.rows *= np.float32(0.9)

        scaled, h2 = run(shrink)
        self.assertNotEqual(h2, h0)
        self.assertEqual(scaled["clients"], plain["clients"])

        def boom(u):
            if u.round == 2:
                raise RuntimeError("defence failed")

        sim = fedrec.Simulation(**self.OPTS)
        sim.set_device_hook(boom)
        with self.assertRaises(fedrec.FedrecError) as cm:
            sim.run()
        self.assertIn("stopped the run in round 2", str(cm.exception))
        self.assertIsInstance(cm.exception.__cause__, RuntimeError)
        sim.close()

    def test_sum_hook(self):
        """The sums before the step: the updates' totals (cross-checked
        with the update hook), a defence that changes them changes the
        model, a raise stops the run, and under secure aggregation the
        unmasked sum equals the plain sum of the same clipped updates."""
        up, seen = {}, {}
        lock = threading.Lock()  # updates arrive on several threads

        def on_update(u):
            h = float(u.rows.astype(np.float64).sum())
            with lock:
                t = up.setdefault(u.round, [0.0, 0.0])
                t[0] += h
                t[1] += u.count

        def on_sum(s):
            self.assertFalse(s.items.flags.writeable)
            self.assertEqual(s.Q.shape[0], len(s.bi))
            h = s.rows[:, -(s.Q.shape[1] + 1):].astype(np.float64).sum()
            seen[s.round] = (h, s.count, s.cohort)

        with fedrec.Simulation(**self.OPTS) as sim:
            sim.set_update_hook(on_update)
            sim.set_sum_hook(on_sum)
            sim.run()
            h0 = sim.model_hash
            for r in (1, 2, 3):
                self.assertEqual(seen[r][2], sim.metrics(r)["clients"])
                self.assertAlmostEqual(seen[r][0], up[r][0],
                                       delta=1e-4 * abs(up[r][0]))
                self.assertAlmostEqual(seen[r][1], up[r][1], places=6)
        with fedrec.Simulation(**self.OPTS) as plain:
            plain.run()
            self.assertEqual(plain.model_hash, h0)

        def shrink(s):
            s.rows *= np.float32(0.5)
            s.count *= 0.5
            s.sum_ratings *= 0.5

        with fedrec.Simulation(**self.OPTS) as sim:
            sim.set_sum_hook(shrink)
            sim.run()
            self.assertNotEqual(sim.model_hash, h0)

        def boom(s):
            if s.round == 2:
                raise KeyError("sum")

        sim = fedrec.Simulation(**self.OPTS)
        sim.set_sum_hook(boom)
        with self.assertRaises(fedrec.FedrecError) as cm:
            sim.run()
        self.assertIn("stopped the run in round 2", str(cm.exception))
        self.assertIsInstance(cm.exception.__cause__, KeyError)
        sim.close()

        totals = {}
        for sa in ("off", "full"):
            with fedrec.Simulation(synthetic=SYNTH, rounds=2, algo="grad",
                                   no_reference=True, seed=9,
                                   clients_per_round=20, clip=5,
                                   secure_agg=sa) as sim:
                sim.set_sum_hook(lambda s, sa=sa: totals.__setitem__(
                    (sa, s.round), (float(s.rows.sum()), s.cohort)))
                sim.run()
        for r in (1, 2):
            p, q = totals[("off", r)], totals[("full", r)]
            self.assertEqual(q[1], 20)
            self.assertNotEqual(p[0], 0.0)
            self.assertAlmostEqual(q[0], p[0], delta=1e-3 * abs(p[0]))

    def test_masked_hook(self):
        seen = {}

        def on_masked(r, member, words):
            self.assertFalse(words.flags.writeable)
            seen.setdefault(r, set()).add((member, len(words)))

        with fedrec.Simulation(synthetic=SYNTH, rounds=2, algo="grad",
                               no_reference=True, seed=9, clip=5,
                               clients_per_round=20, secure_agg="full") as sim:
            sim.set_masked_hook(on_masked)
            sim.run()
        for r in (1, 2):
            self.assertEqual(len(seen[r]), 20)
            self.assertEqual({m for m, _ in seen[r]}, set(range(20)))
        with fedrec.Simulation(**self.OPTS) as sim:
            with self.assertRaises(fedrec.FedrecError) as cm:
                sim.set_masked_hook(lambda *a: None)
            self.assertIn("secure-agg", str(cm.exception))
        sim = fedrec.Simulation(synthetic=SYNTH, rounds=2, algo="grad",
                                no_reference=True, clip=5,
                                clients_per_round=20, secure_agg="full")
        sim.set_masked_hook(lambda r, m, w: 1 / 0 if r == 2 else None)
        with self.assertRaises(fedrec.FedrecError) as cm:
            sim.run()
        self.assertIn("stopped the run in round 2", str(cm.exception))
        self.assertIsInstance(cm.exception.__cause__, ZeroDivisionError)
        sim.close()

    def test_secure_aggregation_refuses(self):
        with fedrec.Simulation(synthetic=SYNTH, rounds=1, no_reference=True,
                               secure_agg="plus",
                               clients_per_round=20) as sim:
            with self.assertRaises(fedrec.FedrecError) as cm:
                sim.set_update_hook(lambda u: None)
            self.assertIn("secure aggregation", str(cm.exception))
            with self.assertRaises(fedrec.FedrecError) as cm:
                sim.set_device_hook(lambda u: None)
            self.assertIn("plain updates", str(cm.exception))


if __name__ == "__main__":
    print("fedrec library:", fedrec.library_path(), file=sys.stderr)
    unittest.main(verbosity=2)
