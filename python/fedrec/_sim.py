"""Simulation runs over libfedrec-sim."""

import ctypes
import itertools
import json

try:
    import numpy as np
except ImportError as e:  # pragma: no cover - said clearly, not skipped
    raise ImportError(
        "fedrec needs numpy (Debian: apt-get install python3-numpy; "
        "scripts/install-deps.sh installs it)") from e

from . import _lib
from ._lib import FR_ENOSPC, FR_OK


def _options(kwargs):
    """fedrec-sim options from keyword arguments: (names, values)."""
    names, values = [], []
    for key, val in kwargs.items():
        if val is None or val is False:
            continue
        name = key.replace("_", "-")
        if val is True:
            names.append(name)
            values.append(None)
        elif isinstance(val, (list, tuple)):
            raise TypeError(f"{key}: one value per run (use fedrec.sweep "
                            f"for a grid)")
        else:
            names.append(name)
            values.append(str(val))
    return names, values


def _text(fn, *args):
    """The NUL-terminated text a sizing call of libfedrec-sim returns."""
    need = ctypes.c_size_t(0)
    cap = 4096
    while True:
        buf = ctypes.create_string_buffer(cap)
        rc = fn(*args, buf, cap, ctypes.byref(need))
        if rc == FR_OK:
            return buf.value.decode()
        if rc != FR_ENOSPC:
            return rc
        cap = need.value + 1


class Update:
    """One plain update as the aggregator sees it (fr_sim_update): round,
    device (simulation ground truth: the user who sent it, -1 if unknown;
    the aggregator itself only sees key), key (bytes), items (uint32, n),
    rows (float32, n x width), gram (float32 or None), sum_ratings, count,
    weight. The arrays are views of the library's buffers, valid only
    during the hook: copy (np.array(u.rows)) what you keep."""

    __slots__ = ("round", "device", "key", "items", "rows", "gram",
                 "sum_ratings", "count", "weight")

    def __init__(self, u):
        self.round = u.round
        self.device = -1 if u.device == 0xFFFFFFFF else u.device
        self.key = ctypes.string_at(u.key, 32)
        n, w = u.n, u.width
        if n > 0:
            self.items = np.ctypeslib.as_array(u.items, shape=(n,))
            self.rows = np.ctypeslib.as_array(u.rows, shape=(n, w))
        else:
            self.items = np.empty(0, dtype=np.uint32)
            self.rows = np.empty((0, w), dtype=np.float32)
        self.gram = (np.ctypeslib.as_array(u.gram, shape=(u.gram_len,))
                     if u.gram_len > 0 else None)
        self.sum_ratings = u.sum_ratings
        self.count = u.count
        self.weight = u.weight


class DeviceUpdate:
    """One device's update before it leaves the device: round, device,
    items (read-only uint32 view), rows (writable float32 view, n x width),
    extra (writable float32 view: ALS Gram or VBMF block, then the sum of
    ratings and the count), weight (float; set it to change it). Change
    the arrays in place; they are valid only during the hook."""

    __slots__ = ("round", "device", "items", "rows", "extra", "weight",
                 "_w")

    def __init__(self, u):
        self.round = u.round
        self.device = u.device
        n, w = u.n, u.width
        if n > 0:
            self.items = np.ctypeslib.as_array(u.items, shape=(n,))
            self.items.flags.writeable = False
            self.rows = np.ctypeslib.as_array(u.rows, shape=(n, w))
        else:
            self.items = np.empty(0, dtype=np.uint32)
            self.rows = np.empty((0, w), dtype=np.float32)
        self.extra = (np.ctypeslib.as_array(u.extra, shape=(u.extra_len,))
                      if u.extra_len > 0 else np.empty(0, np.float32))
        self._w = u.weight
        self.weight = float(u.weight[0])


class Sum:
    """The aggregator's sums of one round before the model step
    (fr_sim_sum): round, cohort (updates in the sum), items (uint32, n),
    rows (writable float32, n x width: ALS [packed Gram | h] per item,
    gradient [factors | bias]), mu, bi, Q (the model before the step,
    read-only), and sum_ratings and count (floats; set them to change
    them). Under secure aggregation this is the unmasked sum. Change the
    arrays in place; they are valid only during the hook."""

    __slots__ = ("round", "cohort", "items", "rows", "mu", "bi", "Q",
                 "sum_ratings", "count", "_s")

    def __init__(self, s):
        self.round = s.round
        self.cohort = s.cohort
        n, w = s.n, s.width
        if n > 0:
            self.items = np.ctypeslib.as_array(s.items, shape=(n,))
            self.items.flags.writeable = False
            self.rows = np.ctypeslib.as_array(s.rows, shape=(n, w))
        else:
            self.items = np.empty(0, dtype=np.uint32)
            self.rows = np.empty((0, w), dtype=np.float32)
        self.mu = s.mu
        self.bi = np.ctypeslib.as_array(s.bi, shape=(s.n_items,))
        self.bi.flags.writeable = False
        self.Q = np.ctypeslib.as_array(s.Q, shape=(s.n_items, s.k))
        self.Q.flags.writeable = False
        self.sum_ratings = float(s.sum_ratings[0])
        self.count = float(s.count[0])
        self._s = s


class Simulation:
    """One fedrec-sim run, stepped round by round.

    Keyword arguments are fedrec-sim's flags (see the package docstring).
    Creating it loads the data and, unless ``no_reference=True``, trains
    the centralized reference. Iterating yields each round's metrics (a
    dict, the JSON line fedrec-sim --json prints for it) as soon as they are
    final, running rounds as needed.
    """

    def __init__(self, **kwargs):
        names, values = _options(kwargs)
        n = len(names)
        c_names = (ctypes.c_char_p * max(n, 1))(
            *[s.encode() for s in names])
        c_values = (ctypes.c_char_p * max(n, 1))(
            *[None if v is None else v.encode() for v in values])
        err = ctypes.create_string_buffer(1024)
        h = ctypes.c_void_p()
        rc = _lib.fr_sim_create(ctypes.byref(h), n, c_names, c_values, err,
                                len(err))
        if rc != FR_OK:
            raise _lib.error(rc, err.value.decode())
        self._h = h
        self.options = dict(zip(names, values))
        info = _lib.Info()
        _lib.fr_sim_get_info(self._h, ctypes.byref(info))
        self.rounds_total = info.rounds
        self.n_users = info.n_users
        self.n_items = info.n_items
        self.k = info.k
        self.implicit = bool(info.implicit)
        self._seen = 0
        self._hook = None      # the ctypes callbacks, kept alive
        self._dev_hook = None
        self._sum_hook = None
        self._masked_hook = None
        self._hook_exc = None  # what the Python hook raised

    # -- lifetime --------------------------------------------------------
    def close(self):
        if getattr(self, "_h", None):
            _lib.fr_sim_destroy(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _handle(self):
        if not self._h:
            raise ValueError("the simulation is closed")
        return self._h

    def _raise(self, rc):
        err = _lib.error(rc, _lib.fr_sim_errmsg(self._h).decode())
        exc, self._hook_exc = self._hook_exc, None
        if exc is not None:
            err = _lib.FedrecError(
                err.code, err.name,
                f"{err.message}: the hook raised {exc!r}")
            raise err from exc
        raise err

    # -- hooks -----------------------------------------------------------
    def set_device_hook(self, fn):
        """A defence on each device: fn(update) gets every sending
        device's update (a DeviceUpdate) before it leaves the device and
        may change its values in place; from the next round on. None
        removes it. If fn raises, the run stops as with set_update_hook.
        Plain aggregation only (not --secure-agg or latest statistics)."""
        h = self._handle()
        if fn is None:
            rc = _lib.fr_sim_set_device_hook(h, _lib.DEVICE_FN(), None)
            if rc != FR_OK:
                self._raise(rc)
            self._dev_hook = None
            return

        def trampoline(ctx, up):
            if self._hook_exc is not None:
                return 1
            try:
                d = DeviceUpdate(up.contents)
                fn(d)
                d._w[0] = d.weight
                return 0
            except BaseException as e:  # stops the run; re-raised by step
                self._hook_exc = e
                return 1

        cb = _lib.DEVICE_FN(trampoline)
        rc = _lib.fr_sim_set_device_hook(h, cb, None)
        if rc != FR_OK:
            self._raise(rc)
        self._dev_hook = cb

    def set_update_hook(self, fn):
        """Calls fn(update) with every plain update the aggregator receives
        (an Update: its view of one device), from the next round on; None
        removes the hook. If fn raises, the run stops: the round in
        progress ends, step() raises FedrecError chained to fn's exception
        and the simulation runs no further round."""
        h = self._handle()
        if fn is None:
            rc = _lib.fr_sim_set_update_hook(h, _lib.UPDATE_FN(), None)
            if rc != FR_OK:
                self._raise(rc)
            self._hook = None
            return

        def trampoline(ctx, up):
            if self._hook_exc is not None:
                return 1
            try:
                fn(Update(up.contents))
                return 0
            except BaseException as e:  # stops the run; re-raised by step
                self._hook_exc = e
                return 1

        cb = _lib.UPDATE_FN(trampoline)
        rc = _lib.fr_sim_set_update_hook(h, cb, None)
        if rc != FR_OK:
            self._raise(rc)
        self._hook = cb

    def set_masked_hook(self, fn):
        """Under --secure-agg: calls fn(round, member, words) with every
        masked vector the aggregator receives (words: a read-only uint32
        view, valid only during the call; member: the index in the round's
        roster). None removes it. If fn raises, the run stops as with
        set_update_hook. Called under the aggregator's round lock: keep it
        short."""
        h = self._handle()
        if fn is None:
            rc = _lib.fr_sim_set_masked_hook(h, _lib.MASKED_FN(), None)
            if rc != FR_OK:
                self._raise(rc)
            self._masked_hook = None
            return

        def trampoline(ctx, mp):
            if self._hook_exc is not None:
                return 1
            try:
                m = mp.contents
                w = (np.ctypeslib.as_array(m.words, shape=(m.n_words,))
                     if m.n_words > 0 else np.empty(0, np.uint32))
                w.flags.writeable = False
                fn(m.round, m.member, w)
                return 0
            except BaseException as e:  # stops the run; re-raised by step
                self._hook_exc = e
                return 1

        cb = _lib.MASKED_FN(trampoline)
        rc = _lib.fr_sim_set_masked_hook(h, cb, None)
        if rc != FR_OK:
            self._raise(rc)
        self._masked_hook = cb

    def set_sum_hook(self, fn):
        """Calls fn(sum) once per round with the aggregator's sums before
        the model step (a Sum; under --secure-agg the unmasked sum), from
        the next round on: an attack reads them, a defence changes them in
        place. None removes it. If fn raises, the run stops as with
        set_update_hook (the sums are left unchanged)."""
        h = self._handle()
        if fn is None:
            rc = _lib.fr_sim_set_sum_hook(h, _lib.SUM_FN(), None)
            if rc != FR_OK:
                self._raise(rc)
            self._sum_hook = None
            return

        def trampoline(ctx, sp):
            if self._hook_exc is not None:
                return 1
            try:
                s = Sum(sp.contents)
                fn(s)
                s._s.sum_ratings[0] = s.sum_ratings
                s._s.count[0] = s.count
                return 0
            except BaseException as e:  # stops the run; re-raised by step
                self._hook_exc = e
                return 1

        cb = _lib.SUM_FN(trampoline)
        rc = _lib.fr_sim_set_sum_hook(h, cb, None)
        if rc != FR_OK:
            self._raise(rc)
        self._sum_hook = cb

    # -- running ---------------------------------------------------------
    @property
    def finished(self):
        return bool(_lib.fr_sim_finished(self._handle()))

    @property
    def rounds_run(self):
        return _lib.fr_sim_rounds_run(self._handle())

    @property
    def rounds_reported(self):
        return _lib.fr_sim_rounds_reported(self._handle())

    def step(self):
        """Runs the next round; returns the metrics dicts of the rounds that
        became final (none, one, or the last two at the end)."""
        rc = _lib.fr_sim_step(self._handle())
        if rc != FR_OK:
            self._raise(rc)
        return self._new_rounds()

    def run(self):
        """Runs every remaining round; returns the summary dict."""
        while not self.finished:
            self.step()
        return self.summary

    def _new_rounds(self):
        out = []
        while self._seen < self.rounds_reported:
            self._seen += 1
            out.append(self.metrics(self._seen))
        return out

    def __iter__(self):
        for r in range(1, self.rounds_reported + 1):
            yield self.metrics(r)
        seen = self.rounds_reported
        while not self.finished:
            self.step()
            while seen < self.rounds_reported:
                seen += 1
                yield self.metrics(seen)

    # -- results ---------------------------------------------------------
    def metrics(self, round):
        """The metrics of a reported round (1-based) as a dict."""
        h = self._handle()
        t = _text(_lib.fr_sim_round_json, h, int(round))
        if isinstance(t, int):
            self._raise(t)
        return json.loads(t)

    def round_metrics(self, round):
        """The same round as numbers: rmse, mae, hr10, ndcg10 as floats
        (NaN when not computed), without JSON's 6-digit rounding."""
        m = _lib.Metrics()
        rc = _lib.fr_sim_round_metrics(self._handle(), int(round),
                                       ctypes.byref(m))
        if rc != FR_OK:
            self._raise(rc)
        return {name: getattr(m, name) for name, _ in m._fields_}

    @property
    def summary(self):
        """The run's summary (fedrec-sim --json's last line) as a dict."""
        t = _text(_lib.fr_sim_summary_json, self._handle())
        if isinstance(t, int):
            self._raise(t)
        return json.loads(t)

    def summary_text(self):
        t = _text(_lib.fr_sim_summary_text, self._handle())
        if isinstance(t, int):
            self._raise(t)
        return t

    def write_outputs(self, folder):
        """metrics.csv, summary.json and SVG plots, as fedrec-sim --out."""
        rc = _lib.fr_sim_write_outputs(self._handle(), str(folder).encode())
        if rc != FR_OK:
            self._raise(rc)

    def model(self):
        """The aggregator's item model: (mu, item biases (n_items,),
        item factors (n_items, k)), float32 copies."""
        bi = np.empty(self.n_items, dtype=np.float32)
        Q = np.empty((self.n_items, self.k), dtype=np.float32)
        mu = ctypes.c_float(0)
        fp = ctypes.POINTER(ctypes.c_float)
        rc = _lib.fr_sim_model(self._handle(), ctypes.byref(mu),
                               bi.ctypes.data_as(fp), bi.size,
                               Q.ctypes.data_as(fp), Q.size)
        if rc != FR_OK:
            self._raise(rc)
        return float(mu.value), bi, Q

    @property
    def provenance(self):
        """Where the run comes from: {"config": the settings that define it,
        "config_hash", "seed", "version", "git"} (fedrec-sim --sweep's
        fields)."""
        t = _text(_lib.fr_sim_provenance_json, self._handle())
        if isinstance(t, int):
            self._raise(t)
        return json.loads(t)

    @property
    def model_hash(self):
        """Hex hash of the final item model (equal runs, equal hashes)."""
        out = (ctypes.c_uint8 * 32)()
        rc = _lib.fr_sim_model_hash(self._handle(), out)
        if rc != FR_OK:
            self._raise(rc)
        return bytes(out).hex()


def simulate(**kwargs):
    """Runs fedrec-sim with these flags (dashes as underscores); returns
    the summary as a dict."""
    with Simulation(**kwargs) as sim:
        return sim.run()


def sweep(grid, **base):
    """Runs every combination of ``grid`` (flag -> list of values, the last
    one varying fastest, as fedrec-sim --sweep) on top of ``base``; yields
    one dict per run with fedrec-sim --sweep's fields: run, sweep (the
    point), config, config_hash, seed, version, git and summary."""
    keys = list(grid)
    for i, combo in enumerate(
            itertools.product(*(list(grid[k]) for k in keys))):
        opts = dict(base)
        opts.update(zip(keys, combo))
        with Simulation(**opts) as sim:
            summary = sim.run()
            row = {"run": i + 1,
                   "sweep": {k.replace("_", "-"): str(v)
                             for k, v in zip(keys, combo)}}
            row.update(sim.provenance)
            row["summary"] = summary
        yield row
