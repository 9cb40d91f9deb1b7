"""Loading libfedrec-sim and declaring its functions (fedrec/sim.h)."""

import ctypes
import ctypes.util
import os

_SONAME = "libfedrec-sim.so.0"

# Codes of fedrec/err.h (stable: never renumbered).
FR_OK = 0
FR_ENOSPC = 3
FR_ECLOSED = 19


class FedrecError(RuntimeError):
    """A libfedrec-sim call failed: ``code`` is the fr_err value, ``name``
    its symbol (``FR_EINVAL``) and the message says why."""

    def __init__(self, code, name, message):
        super().__init__(f"{message} ({name})")
        self.code = code
        self.name = name
        self.message = message


class Metrics(ctypes.Structure):
    # fr_sim_metrics, field for field.
    _fields_ = [
        ("round", ctypes.c_uint32),
        ("evaluated", ctypes.c_int),
        ("rmse", ctypes.c_double),
        ("mae", ctypes.c_double),
        ("hr10", ctypes.c_double),
        ("ndcg10", ctypes.c_double),
        ("clients", ctypes.c_uint32),
        ("dropped", ctypes.c_uint32),
        ("failed", ctypes.c_uint32),
        ("abandoned", ctypes.c_int),
        ("bytes_up", ctypes.c_uint64),
        ("bytes_down", ctypes.c_uint64),
        ("seconds", ctypes.c_double),
        ("epsilon", ctypes.c_double),
        ("attack_auc", ctypes.c_double),
    ]


class Info(ctypes.Structure):
    # fr_sim_info, field for field.
    _fields_ = [
        ("rounds", ctypes.c_uint32),
        ("n_users", ctypes.c_uint32),
        ("n_items", ctypes.c_uint32),
        ("k", ctypes.c_uint32),
        ("implicit", ctypes.c_int),
        ("json", ctypes.c_int),
        ("quiet", ctypes.c_int),
        ("progress", ctypes.c_int),
        ("out_dir", ctypes.c_char_p),
    ]


class Update(ctypes.Structure):
    # fr_sim_update, field for field.
    _fields_ = [
        ("round", ctypes.c_uint32),
        ("device", ctypes.c_uint32),
        ("key", ctypes.POINTER(ctypes.c_uint8)),
        ("n", ctypes.c_uint32),
        ("items", ctypes.POINTER(ctypes.c_uint32)),
        ("rows", ctypes.POINTER(ctypes.c_float)),
        ("width", ctypes.c_uint32),
        ("gram", ctypes.POINTER(ctypes.c_float)),
        ("gram_len", ctypes.c_size_t),
        ("sum_ratings", ctypes.c_double),
        ("count", ctypes.c_double),
        ("weight", ctypes.c_double),
    ]


class DeviceUpdate(ctypes.Structure):
    # fr_sim_device_update, field for field.
    _fields_ = [
        ("round", ctypes.c_uint32),
        ("device", ctypes.c_uint32),
        ("n", ctypes.c_uint32),
        ("items", ctypes.POINTER(ctypes.c_uint32)),
        ("rows", ctypes.POINTER(ctypes.c_float)),
        ("width", ctypes.c_uint32),
        ("extra", ctypes.POINTER(ctypes.c_float)),
        ("extra_len", ctypes.c_size_t),
        ("weight", ctypes.POINTER(ctypes.c_float)),
    ]


class Sum(ctypes.Structure):
    # fr_sim_sum, field for field.
    _fields_ = [
        ("round", ctypes.c_uint32),
        ("cohort", ctypes.c_uint32),
        ("n", ctypes.c_uint32),
        ("items", ctypes.POINTER(ctypes.c_uint32)),
        ("rows", ctypes.POINTER(ctypes.c_float)),
        ("width", ctypes.c_uint32),
        ("sum_ratings", ctypes.POINTER(ctypes.c_double)),
        ("count", ctypes.POINTER(ctypes.c_double)),
        ("mu", ctypes.c_float),
        ("bi", ctypes.POINTER(ctypes.c_float)),
        ("Q", ctypes.POINTER(ctypes.c_float)),
        ("n_items", ctypes.c_uint32),
        ("k", ctypes.c_uint32),
    ]


class Masked(ctypes.Structure):
    # fr_sim_masked, field for field.
    _fields_ = [
        ("round", ctypes.c_uint32),
        ("member", ctypes.c_uint32),
        ("words", ctypes.POINTER(ctypes.c_uint32)),
        ("n_words", ctypes.c_size_t),
    ]


MASKED_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                             ctypes.POINTER(Masked))

SUM_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                          ctypes.POINTER(Sum))

DEVICE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                             ctypes.POINTER(DeviceUpdate))

UPDATE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                             ctypes.POINTER(Update))


def _candidates():
    """Where the library may be, in order of preference."""
    lib = os.environ.get("FEDREC_LIB")
    if lib:
        yield lib
        return  # an explicit file is not second-guessed
    build = os.environ.get("FEDREC_BUILD_DIR")
    if build:
        yield os.path.join(build, "lib", _SONAME)
        return
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from . import _install  # written by cmake --install
        yield os.path.join(_install.LIBDIR, _SONAME)
    except ImportError:
        pass
    # Installed as <prefix>/lib/python3/dist-packages/fedrec: <prefix>/lib.
    yield os.path.join(here, "..", "..", "..", _SONAME)
    # The source tree's default build folder (PYTHONPATH=python).
    yield os.path.join(here, "..", "..", "build", "lib", _SONAME)
    found = ctypes.util.find_library("fedrec-sim")
    yield found if found else _SONAME


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path + " (missing)")
            continue
        try:
            return ctypes.CDLL(path), os.path.normpath(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError(
        "fedrec: libfedrec-sim not found; build the project "
        "(bash scripts/build.sh) and set FEDREC_BUILD_DIR to the build "
        "folder, or install it (cmake --install). Tried: " + "; ".join(tried))


_lib, _path = _load()

_c = ctypes
_P = _c.POINTER
_sim_p = _c.c_void_p


def _decl(name, res, *args):
    f = getattr(_lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f


fr_strerror = _decl("fr_strerror", _c.c_char_p, _c.c_int)
fr_errname = _decl("fr_errname", _c.c_char_p, _c.c_int)
fr_version_string = _decl("fr_version_string", _c.c_char_p)
fr_sim_create = _decl("fr_sim_create", _c.c_int, _P(_sim_p), _c.c_size_t,
                      _P(_c.c_char_p), _P(_c.c_char_p), _c.c_char_p,
                      _c.c_size_t)
fr_sim_destroy = _decl("fr_sim_destroy", None, _sim_p)
fr_sim_errmsg = _decl("fr_sim_errmsg", _c.c_char_p, _sim_p)
fr_sim_usage = _decl("fr_sim_usage", _c.c_char_p)
fr_sim_get_info = _decl("fr_sim_get_info", None, _sim_p, _P(Info))
fr_sim_step = _decl("fr_sim_step", _c.c_int, _sim_p)
fr_sim_rounds_run = _decl("fr_sim_rounds_run", _c.c_uint32, _sim_p)
fr_sim_rounds_reported = _decl("fr_sim_rounds_reported", _c.c_uint32,
                               _sim_p)
fr_sim_finished = _decl("fr_sim_finished", _c.c_int, _sim_p)
fr_sim_round_metrics = _decl("fr_sim_round_metrics", _c.c_int, _sim_p,
                             _c.c_uint32, _P(Metrics))
fr_sim_round_json = _decl("fr_sim_round_json", _c.c_int, _sim_p,
                          _c.c_uint32, _c.c_char_p, _c.c_size_t,
                          _P(_c.c_size_t))
fr_sim_summary_json = _decl("fr_sim_summary_json", _c.c_int, _sim_p,
                            _c.c_char_p, _c.c_size_t, _P(_c.c_size_t))
fr_sim_summary_text = _decl("fr_sim_summary_text", _c.c_int, _sim_p,
                            _c.c_char_p, _c.c_size_t, _P(_c.c_size_t))
fr_sim_write_outputs = _decl("fr_sim_write_outputs", _c.c_int, _sim_p,
                             _c.c_char_p)
fr_sim_model = _decl("fr_sim_model", _c.c_int, _sim_p, _P(_c.c_float),
                     _P(_c.c_float), _c.c_size_t, _P(_c.c_float),
                     _c.c_size_t)
fr_sim_provenance_json = _decl("fr_sim_provenance_json", _c.c_int, _sim_p,
                               _c.c_char_p, _c.c_size_t, _P(_c.c_size_t))
fr_sim_set_update_hook = _decl("fr_sim_set_update_hook", _c.c_int, _sim_p,
                               UPDATE_FN, _c.c_void_p)
fr_sim_set_masked_hook = _decl("fr_sim_set_masked_hook", _c.c_int, _sim_p,
                               MASKED_FN, _c.c_void_p)
fr_sim_set_sum_hook = _decl("fr_sim_set_sum_hook", _c.c_int, _sim_p,
                            SUM_FN, _c.c_void_p)
fr_sim_set_device_hook = _decl("fr_sim_set_device_hook", _c.c_int, _sim_p,
                               DEVICE_FN, _c.c_void_p)
fr_sim_model_hash = _decl("fr_sim_model_hash", _c.c_int, _sim_p,
                          _P(_c.c_uint8))


def error(code, message):
    name = fr_errname(code).decode()
    return FedrecError(code, name, message or fr_strerror(code).decode())


def library_path():
    """The libfedrec-sim file in use."""
    return _path


def version():
    """The library's version string."""
    return fr_version_string().decode()
