"""Read TensorFlow checkpoints, SavedModels, GraphDefs and TensorProtos into NumPy,
without TensorFlow.

    import tf2npy
    weights = tf2npy.load("model.ckpt")                 # {name: numpy.ndarray}
    with tf2npy.open("model.ckpt") as f:                # lazy, one tensor at a time
        for name in f.keys():
            w = f.get_tensor(name)
    tf2npy.list_variables("model.ckpt")                 # like tf.train.list_variables
    tf2npy.load_variable("model.ckpt", "dense/kernel")  # like tf.train.load_variable

Every call runs the `tf2npy` binary installed with this package (a thin wrapper: the
binary streams each tensor's `.npy` bytes into the array through a pipe; see
BENCHMARKS.md for why). Errors are raised as `tf2npy.Error` carrying the command's
message (the file, the tensor and what is wrong). bfloat16 and the float8/float4 types
are widened to float32 exactly, or returned as `ml_dtypes` types with
`bfloat16="ml_dtypes"` (needs the `ml_dtypes` package).
"""

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np

__all__ = [
    "Error",
    "InputError",
    "UsageError",
    "load",
    "open",
    "list_variables",
    "load_variable",
    "binary",
]

_open = open  # the builtin, before `open` below shadows it


class Error(Exception):
    """tf2npy failed; the message is the command's own error message."""


class InputError(Error):
    """The input is damaged, unreadable or holds something tf2npy cannot convert
    (the command's exit status 1)."""


class UsageError(Error, ValueError):
    """The call asked for something impossible, e.g. a tensor name the input lacks
    (exit status 2)."""


def binary():
    """The path of the `tf2npy` binary used: `$TF2NPY_BINARY`, else the one installed in
    this Python environment's scripts folder, else the first on PATH."""
    env = os.environ.get("TF2NPY_BINARY")
    if env:
        return env
    exe = "tf2npy.exe" if sys.platform == "win32" else "tf2npy"
    here = os.path.join(sysconfig.get_path("scripts"), exe)
    if os.path.isfile(here):
        return here
    found = shutil.which("tf2npy")
    if found:
        return found
    raise Error("the tf2npy binary is not installed (pip install tf2npy, or set TF2NPY_BINARY)")


def _raise(proc_rc, stderr, args):
    text = stderr.decode("utf-8", "replace").strip()
    lines = [l for l in text.splitlines() if l.startswith("tf2npy: error: ")]
    msg = lines[-1][len("tf2npy: error: "):] if lines else (text or f"tf2npy {' '.join(args)} failed")
    raise (UsageError if proc_rc == 2 else InputError)(msg)


def _run(args):
    """Runs the binary with args; returns its stdout bytes or raises Error."""
    p = subprocess.run([binary()] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        _raise(p.returncode, p.stderr, args)
    return p.stdout


_RAW_TYPES = {
    "bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz",
    "float8_e4m3b11fnuz", "float8_e5m2fnuz", "float4_e2m1fn",
}


def _check_bfloat16(bfloat16):
    if bfloat16 == "float32":
        return False
    if bfloat16 == "ml_dtypes":
        try:
            import ml_dtypes  # noqa: F401
        except ImportError as e:
            raise UsageError("bfloat16='ml_dtypes' needs the ml_dtypes package") from e
        return True
    raise UsageError(f"bfloat16 must be 'float32' or 'ml_dtypes', not {bfloat16!r}")


def _as_ml_dtype(arr, tf_dtype):
    """Views raw bits (`--raw-bits` output) as the ml_dtypes type of tf_dtype."""
    if tf_dtype in _RAW_TYPES:
        import ml_dtypes

        return arr.view(getattr(ml_dtypes, tf_dtype))
    return arr


def _read_npy(stream, what):
    """Reads one .npy from a binary stream straight into a new array (no extra copy)."""
    magic = stream.read(8)
    if len(magic) != 8 or magic[:6] != b"\x93NUMPY":
        return None
    hlen_bytes = stream.read(2 if magic[6] == 1 else 4)
    hlen = int.from_bytes(hlen_bytes, "little")
    header = ast.literal_eval(stream.read(hlen).decode("latin1"))
    arr = np.empty(header["shape"], dtype=np.dtype(header["descr"]))
    view = memoryview(arr.reshape(-1).view(np.uint8)) if arr.size else memoryview(b"")
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            return None
        got += n
    return arr


def _stream_tensor(path, name, raw, extra=()):
    args = [os.fspath(path), "--tensor", name, "-q", "-o", "-"] + list(extra)
    if raw:
        args.append("--raw-bits")
    with subprocess.Popen([binary()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        arr = _read_npy(p.stdout, name)
        p.stdout.read()
        err = p.stderr.read()
        rc = p.wait()
    if rc != 0 or arr is None:
        _raise(rc or 1, err, args)
    return arr


def _globs(select):
    if select is None:
        return []
    if isinstance(select, str):
        select = [select]
    args = []
    for g in select:
        args += ["--select", g]
    return args


def load(path, select=None, *, bfloat16="float32"):
    """Every tensor of `path` (any input the tf2npy command reads) as a dict of
    name -> numpy.ndarray, exactly as `tf2npy PATH -o out.npz` would write them (hidden
    entries left out, sparse parts densified). `select`: a glob or list of globs
    (`--select`; `*` also matches `/`)."""
    raw = _check_bfloat16(bfloat16)
    with tempfile.TemporaryDirectory(prefix="tf2npy-") as tmp:
        out = os.path.join(tmp, "all.npz")
        manifest = os.path.join(tmp, "all.json")
        args = [os.fspath(path), "-q", "-o", out, "--manifest", manifest] + _globs(select)
        if raw:
            args.append("--raw-bits")
        _run(args)
        with _open(manifest) as f:
            dtypes = {t["name"]: t["source_dtype"] for t in json.load(f)["tensors"]}
        result = {}
        with np.load(out, allow_pickle=False) as z:
            for k in z.files:
                arr = z[k]
                result[k] = _as_ml_dtype(arr, dtypes.get(k)) if raw else arr
        return result


def _listing(path):
    text = _run([os.fspath(path), "--list", "--json", "--all", "--sparse", "keep"])
    return json.loads(text)


def list_variables(path):
    """`tf.train.list_variables`: a list of (name, shape) for every entry of the
    checkpoint (or SavedModel, ...), sorted by name, shapes as lists."""
    return sorted((e["name"], list(e["shape"])) for e in _listing(path))


def load_variable(path, name, *, bfloat16="float32"):
    """`tf.train.load_variable`: the tensor `name` of the checkpoint at `path` as a
    numpy.ndarray (strings as fixed-width bytes `|S<n>`)."""
    raw = _check_bfloat16(bfloat16)
    arr = _stream_tensor(path, name, raw, ["--sparse", "keep"])
    if raw:
        dtype = next((e["dtype"] for e in _listing(path) if e["name"] == name), None)
        arr = _as_ml_dtype(arr, dtype)
    return arr


class Reader:
    """A lazily read input (`tf2npy.open`): names, dtypes and shapes come from one
    listing; each `get_tensor` reads one tensor."""

    def __init__(self, path, bfloat16="float32"):
        self._path = os.fspath(path)
        self._raw = _check_bfloat16(bfloat16)
        self._entries = {e["name"]: e for e in _listing(self._path)}

    def keys(self):
        """Every tensor name, sorted."""
        return sorted(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def dtypes(self):
        """name -> TensorFlow dtype name (`float32`, `bfloat16`, `string`, ...)."""
        return {k: e["dtype"] for k, e in sorted(self._entries.items())}

    def shapes(self):
        """name -> shape tuple."""
        return {k: tuple(e["shape"]) for k, e in sorted(self._entries.items())}

    def get_tensor(self, name):
        """The tensor `name` as a numpy.ndarray."""
        if name not in self._entries:
            raise UsageError(f"no tensor named `{name}` in {self._path}")
        arr = _stream_tensor(self._path, name, self._raw, ["--sparse", "keep"])
        if self._raw:
            arr = _as_ml_dtype(arr, self._entries[name]["dtype"])
        return arr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def open(path, *, bfloat16="float32"):  # noqa: A001 - the safetensors.safe_open habit
    """A reader of `path` with `keys()`, `get_tensor(name)`, `dtypes()`, `shapes()`,
    reading one tensor at a time; usable as a context manager."""
    return Reader(path, bfloat16)
