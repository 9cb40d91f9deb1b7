"""The researcher's examples in python/examples run and reproduce what
they claim. item_inference.py: the Python item-inference attack over the
update hook gives the built-in attack_auc of the same run within 0.01.

Run by ctest with PYTHONPATH=python and FEDREC_BUILD_DIR set.
"""

import os
import sys
import tempfile
import unittest

try:
    import numpy as np  # noqa: F401
except ImportError:
    sys.exit("FAIL: python3-numpy is missing (scripts/install-deps.sh "
             "installs it; Debian: apt-get install python3-numpy)")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python", "examples"))
import item_inference  # noqa: E402


def write_ratings(folder):
    """Small explicit ratings in MovieLens' tab format, users and items
    first seen out of order (the example must rebuild the dense ids)."""
    tr = os.path.join(folder, "train.tsv")
    te = os.path.join(folder, "test.tsv")
    with open(tr, "w") as ft, open(te, "w") as fe:
        for u in range(60, 0, -1):
            for i in range(1, 41):
                it = (i * 17) % 41 + 100
                r = 1 + ((u % 3) * (i % 4) + u + 2 * i) % 5
                if (u * 7 + i * 3) % 5 > 1 and (u + i) % 4:
                    ft.write(f"{u}\t{it}\t{r}\t{1000 + i}\n")
                elif (u + i) % 3 == 0:
                    fe.write(f"{u}\t{it}\t{r}\t{1000 + i}\n")
        fe.write("1\t999\t3\t5000\n")  # an item only the test file has
    return tr, te


class ItemInference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.train, cls.test = write_ratings(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check(self, **flags):
        ours, builtin, n, n_builtin = item_inference.item_inference(
            self.train, self.test, rounds=3, no_reference=True, seed=3,
            transport="direct", **flags)
        self.assertTrue(0.0 < builtin <= 1.0, builtin)
        self.assertLess(abs(ours - builtin), 0.01,
                        f"python {ours} vs built-in {builtin} ({flags})")
        # The same updates of the same rounds, not only a close mean.
        self.assertEqual(n, n_builtin)
        return ours, builtin

    def test_plain_als(self):
        self.check(algo="als")

    def test_pseudo_items_grad(self):
        # Pseudo-items bring the AUC well below 1: a wrong scorer or a
        # wrong labelling would show here, not only on the easy case.
        ours, builtin = self.check(algo="grad", pseudo_items=1)
        self.assertLess(builtin, 0.9)

    def test_pseudo_items_als_some_rounds(self):
        # --eval-every 2 of 3 rounds: the built-in scores rounds 2 and 3.
        self.check(algo="als", pseudo_items=2, eval_every=2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
