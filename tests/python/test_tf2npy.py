"""The installed `tf2npy` Python module (and the binary the wheel puts on PATH) over the
committed fixtures: load / open / list_variables / load_variable bit for bit against
the fixtures' expected arrays (written by TensorFlow, see fixtures/README.md), and
exceptions carrying the command's messages on damaged inputs. Run by .ci/run in a fresh
venv after `pip install .`."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import tf2npy

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures")
MANIFEST = json.load(open(os.path.join(FIXTURES, "manifest.json")))
# Cases converted with extra options (SavedModel --constants) have no Python equivalent.
ALL = [c for c in MANIFEST["cases"] if not c["args"]]
CHECKPOINTS = [c for c in ALL if c["kind"] in ("v2", "v1", "savedmodel")]


def fx(p):
    return os.path.join(FIXTURES, p)


def same(got, want_path, what):
    want = np.load(want_path, allow_pickle=False)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.tobytes() == want.tobytes(), what


def ids(cases):
    return [c["id"] for c in cases]


def test_binary_on_path_reports_its_version():
    exe = shutil.which("tf2npy")
    assert exe, "tf2npy is not on PATH"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("tf2npy "), out.stdout


@pytest.mark.parametrize("case", CHECKPOINTS, ids=ids(CHECKPOINTS))
def test_list_variables_is_tensorflows_list(case):
    got = tf2npy.list_variables(fx(case["input"]))
    want = sorted((t["name"], t["shape"]) for t in case["tensors"])
    assert got == want


@pytest.mark.parametrize("case", CHECKPOINTS, ids=ids(CHECKPOINTS))
def test_load_variable_each_tensor(case):
    path = fx(case["input"])
    for t in case["tensors"]:
        if t["skip"]:
            with pytest.raises(tf2npy.InputError, match="variant"):
                tf2npy.load_variable(path, t["name"])
            continue
        same(tf2npy.load_variable(path, t["name"]), fx(t["expected"]), t["name"])


@pytest.mark.parametrize("case", CHECKPOINTS, ids=ids(CHECKPOINTS))
def test_open_reads_lazily_and_exactly(case):
    with tf2npy.open(fx(case["input"])) as f:
        assert f.keys() == sorted(t["name"] for t in case["tensors"])
        assert f.shapes() == {t["name"]: tuple(t["shape"]) for t in case["tensors"]}
        assert f.dtypes() == {t["name"]: t["tf_dtype"] for t in case["tensors"]}
        for t in case["tensors"]:
            if not t["skip"]:
                same(f.get_tensor(t["name"]), fx(t["expected"]), t["name"])


@pytest.mark.parametrize("case", ALL, ids=ids(ALL))
def test_load_every_input_kind(case):
    if case["kind"] == "tensorproto" or case["kind"] == "sparse":
        got = tf2npy.load(fx(case["input"]))
        (t,) = case["tensors"]
        assert list(got) == [t["name"]]
        same(got[t["name"]], fx(t["expected"]), case["id"])
        return
    got = tf2npy.load(fx(case["input"]))
    dense = case.get("sparse_dense")
    parts = [f"{dense['name']}/{p}/" for p in ("indices", "values", "dense_shape")] if dense else []
    want = {t["name"]: t for t in case["tensors"]
            if not t["skip"] and not t["hidden"] and not any(t["name"].startswith(p) for p in parts)}
    if dense:
        want[dense["name"]] = dense
    assert sorted(got) == sorted(want)
    for name, t in want.items():
        same(got[name], fx(t["expected"]), name)


def test_load_select():
    case = next(c for c in ALL if c["id"] == "v2/all_dtypes")
    got = tf2npy.load(fx(case["input"]), select="*f32*")
    assert got and all("f32" in k for k in got)


def test_bfloat16_as_ml_dtypes():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    case = next(c for c in ALL if c["id"] == "v2/all_dtypes")
    path = fx(case["input"])
    raw = [t for t in case["tensors"] if "expected_raw" in t]
    assert any(t["tf_dtype"] == "bfloat16" for t in raw)
    every = tf2npy.load(path, bfloat16="ml_dtypes")
    with tf2npy.open(path, bfloat16="ml_dtypes") as f:
        for t in raw:
            want = np.load(fx(t["expected_raw"]), allow_pickle=False)
            for got in (tf2npy.load_variable(path, t["name"], bfloat16="ml_dtypes"),
                        f.get_tensor(t["name"]), every[t["name"]]):
                assert got.dtype == getattr(ml_dtypes, t["tf_dtype"]), t["name"]
                assert got.shape == want.shape
                assert got.view(want.dtype).tobytes() == want.tobytes(), t["name"]


def test_errors_carry_the_commands_messages(tmp_path):
    case = next(c for c in ALL if c["id"] == "v2/all_dtypes")
    path = fx(case["input"])
    with pytest.raises(tf2npy.UsageError, match="no tensor named `nope`"):
        tf2npy.load_variable(path, "nope")
    with pytest.raises(tf2npy.UsageError):
        tf2npy.open(path).get_tensor("nope")
    with pytest.raises(tf2npy.Error):
        tf2npy.load(str(tmp_path / "missing.ckpt"))
    with pytest.raises(ValueError):
        tf2npy.load(path, bfloat16="float16")


def test_damaged_checkpoint_raises_naming_file_and_tensor(tmp_path):
    src = os.path.dirname(fx("v2/all_dtypes/ckpt-1"))
    dst = tmp_path / "ckpt"
    shutil.copytree(src, dst)
    data = next(p for p in os.listdir(dst) if ".data-" in p)
    prefix = str(dst / "ckpt-1")
    # Flip the first byte of one float32 tensor: a CRC mismatch naming that tensor.
    listing = json.loads(subprocess.run(["tf2npy", prefix, "--list", "--json"],
                                        capture_output=True, check=True).stdout)
    victim = next(e for e in listing["entries"] if e["dtype"] == "float32" and e["bytes"] >= 4)
    offset = int(victim["location"].rsplit("@", 1)[1])
    blob = bytearray((dst / data).read_bytes())
    blob[offset] ^= 0xFF
    (dst / data).write_bytes(bytes(blob))
    # The exception carries the command's own message, word for word.
    cli = subprocess.run(["tf2npy", prefix, "-o", str(tmp_path / "out.npz")],
                         capture_output=True, text=True)
    assert cli.returncode == 1
    with pytest.raises(tf2npy.InputError) as e:
        tf2npy.load(prefix)
    assert cli.stderr.strip().splitlines()[-1] == f"tf2npy: error: {e.value}"
    for call in (lambda: tf2npy.load(prefix),
                 lambda: tf2npy.load_variable(prefix, victim["name"]),
                 lambda: tf2npy.open(prefix).get_tensor(victim["name"])):
        with pytest.raises(tf2npy.InputError) as e:
            call()
        assert data in str(e.value) and victim["name"] in str(e.value), str(e.value)
    (dst / data).write_bytes(bytes(blob[:100]))  # truncated
    with pytest.raises(tf2npy.InputError, match=data):
        tf2npy.load(prefix)
