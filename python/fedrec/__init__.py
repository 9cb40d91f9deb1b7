"""fedrec: the federated simulator (libfedrec-sim) from Python.

Every user of a dataset runs as its own virtual device with the real fedrec
client library against the real aggregator code, at C speed; this package
drives it through ctypes (no compiled extension).

    import fedrec
    s = fedrec.simulate(train="u1.base", test="u1.test", rounds=5,
                        no_reference=True)
    s["rmse"]

Keyword arguments are fedrec-sim's flags with dashes as underscores
(``fedrec-sim --help``): ``True`` gives a switch (``no_reference=True``),
``False`` or ``None`` leaves the flag out, anything else is passed as its
string (``rounds=5``, ``synthetic="users=100,items=50"``).

The object API steps a run round by round::

    with fedrec.Simulation(synthetic="users=200,items=80", rounds=4,
                           no_reference=True) as sim:
        for m in sim:            # each round's metrics, as a dict
            print(m["round"], m["rmse"])
        mu, bi, Q = sim.model()  # numpy arrays of the aggregator's model
        sim.summary              # the summary dict

The library is found from ``FEDREC_BUILD_DIR`` (a build folder: its
``lib/libfedrec-sim.so``), ``FEDREC_LIB`` (the library file itself), the
folder ``cmake --install`` put it in, or the system's loader.
"""

from ._lib import FedrecError, library_path, version
from ._sim import Simulation, simulate, sweep

__all__ = ["FedrecError", "Simulation", "simulate", "sweep",
           "library_path", "version"]
