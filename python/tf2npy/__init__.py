"""Read TensorFlow checkpoints, SavedModels, GraphDefs and TensorProtos into NumPy,
without TensorFlow.

    import tf2npy
    weights = tf2npy.load("model.ckpt")                 # {name: numpy.ndarray}
    with tf2npy.open("model.ckpt") as f:                # lazy, one tensor at a time
        for name in f.keys():
            w = f.get_tensor(name)
    tf2npy.list_variables("model.ckpt")                 # like tf.train.list_variables
    tf2npy.load_variable("model.ckpt", "dense/kernel")  # like tf.train.load_variable

The readers run in this process (the Rust extension `tf2npy._native`, the same code as
the `tf2npy` command): each tensor is read, checksummed and converted straight into the
memory of the array returned. Errors are raised as `tf2npy.Error` subclasses carrying
the command's message (the file, the tensor and what is wrong). bfloat16 and the
float8/float4 types are widened to float32 exactly, or returned as `ml_dtypes` types with
`bfloat16="ml_dtypes"` (needs the `ml_dtypes` package).
"""

from . import _native

__version__ = _native.__version__

__all__ = [
    "Error",
    "InputError",
    "UsageError",
    "Reader",
    "load",
    "open",
    "list_variables",
    "load_variable",
]


class Error(Exception):
    """tf2npy failed; the message is the command's own error message."""


class InputError(Error):
    """The input is damaged, unreadable or holds something tf2npy cannot convert (what
    makes the command exit with status 1)."""


class UsageError(Error, ValueError):
    """The call asked for something impossible, e.g. a tensor name the input lacks
    (exit status 2)."""


def _call(fn, *args):
    try:
        return fn(*args)
    except _native.Tf2npyError as e:
        code, msg = e.args
        raise (UsageError if code == 2 else InputError)(msg) from None


_RAW_TYPES = {
    "bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz",
    "float8_e4m3b11fnuz", "float8_e5m2fnuz", "float4_e2m1fn",
}


def _raw_bits(bfloat16):
    if bfloat16 == "float32":
        return False
    if bfloat16 == "ml_dtypes":
        try:
            import ml_dtypes  # noqa: F401
        except ImportError as e:
            raise UsageError("bfloat16='ml_dtypes' needs the ml_dtypes package") from e
        return True
    raise UsageError(f"bfloat16 must be 'float32' or 'ml_dtypes', not {bfloat16!r}")


def _array(item, raw):
    """The uint8 array the extension filled, viewed as its dtype and shape (no copy)."""
    import numpy as np

    _name, tf_dtype, descr, shape, data = item
    arr = data.view(np.dtype(descr)).reshape(shape)
    if raw and tf_dtype in _RAW_TYPES:
        import ml_dtypes

        arr = arr.view(getattr(ml_dtypes, tf_dtype))
    return arr


def _path(path):
    import os

    return os.fspath(path)


def load(path, select=None, *, bfloat16="float32"):
    """Every tensor of `path` (any input the tf2npy command reads) as a dict of
    name -> numpy.ndarray, exactly as `tf2npy PATH -o out.npz` writes them (hidden
    entries left out, sparse parts densified, strings as fixed-width bytes `|S<n>`).
    `select`: a glob or a list of globs (`--select`; `*` also matches `/`)."""
    raw = _raw_bits(bfloat16)
    globs = [] if select is None else [select] if isinstance(select, str) else list(select)
    items = _call(_native.load, _path(path), globs, raw)
    return {item[0]: _array(item, raw) for item in items}


def list_variables(path):
    """`tf.train.list_variables`: a list of (name, shape) for every entry of the
    checkpoint (or SavedModel, ...), sorted by name, shapes as lists."""
    return [(n, list(s)) for n, _, s, _ in _call(_native.list_entries, _path(path))]


def load_variable(path, name, *, bfloat16="float32"):
    """`tf.train.load_variable`: the tensor `name` of the checkpoint at `path` as a
    numpy.ndarray (strings as fixed-width bytes `|S<n>`)."""
    raw = _raw_bits(bfloat16)
    return _array(_call(_native.read_tensor, _path(path), name, raw), raw)


class Reader:
    """A lazily read input (`tf2npy.open`): names, dtypes and shapes come from its
    index; each `get_tensor` reads one tensor."""

    def __init__(self, path, bfloat16="float32"):
        self._path = _path(path)
        self._raw = _raw_bits(bfloat16)
        self._entries = {n: (d, tuple(s)) for n, d, s, _ in _call(_native.list_entries, self._path)}

    def keys(self):
        """Every tensor name, sorted."""
        return list(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def dtypes(self):
        """name -> TensorFlow dtype name (`float32`, `bfloat16`, `string`, ...)."""
        return {k: d for k, (d, _) in self._entries.items()}

    def shapes(self):
        """name -> shape tuple."""
        return {k: s for k, (_, s) in self._entries.items()}

    def get_tensor(self, name):
        """The tensor `name` as a numpy.ndarray."""
        return _array(_call(_native.read_tensor, self._path, name, self._raw), self._raw)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def open(path, *, bfloat16="float32"):  # noqa: A001 - the safetensors.safe_open habit
    """A reader of `path` with `keys()`, `get_tensor(name)`, `dtypes()`, `shapes()`,
    reading one tensor at a time; usable as a context manager."""
    return Reader(path, bfloat16)
