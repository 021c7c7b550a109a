#!/usr/bin/env python3
"""Python-module benchmark (issue 14): tf2npy.load_variable on each tensor and tf2npy.load
of the whole checkpoint, against tf.train.load_variable and tf.train.load_checkpoint +
get_tensor, on the checkpoint bench.py generates (make_ckpt.py: SCALE 1 = 1 GiB float32
+ 256 MiB bfloat16).

usage: PY bench/bench_python.py PREFIX [--runs 5] [--cli target/release/tf2npy]

Also times writing PREFIX's tensors to a .safetensors file: `tf2npy PREFIX -o
X.safetensors` (--cli, a subprocess) against TensorFlow's reader + ml_dtypes +
`safetensors.numpy.save_file` (what a TF-to-safetensors converter does), and `cp` of the
data file.

PY must have tensorflow-cpu, numpy, ml_dtypes and the tf2npy wheel installed, e.g.
    /tmp/tfvenv/bin/python -m venv --system-site-packages /tmp/bv
    /tmp/bv/bin/pip install target/wheels/tf2npy-*.whl  # maturin build --release
 Every call is timed in this process (imports
excluded), round-robin across the contenders so drift hits them alike; medians of wall
time and of CPU time (this process plus its children) are printed as Markdown. Page
cache is warm.
"""
import argparse
import os
import resource
import statistics
import time


def cpu():
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def timed(fn):
    c0, t0 = cpu(), time.perf_counter()
    out = fn()
    wall, used = time.perf_counter() - t0, cpu() - c0
    del out
    return wall, used


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cli", default="target/release/tf2npy")
    a = ap.parse_args()
    import shutil
    import subprocess
    import tempfile

    import ml_dtypes
    import numpy as np
    from safetensors.numpy import save_file
    import tf2npy
    import tensorflow as tf

    names = [n for n, _ in tf.train.list_variables(a.prefix)]
    assert [n for n, _ in tf2npy.list_variables(a.prefix)] == names
    for f in os.listdir(os.path.dirname(os.path.abspath(a.prefix))):
        if f.startswith(os.path.basename(a.prefix)):  # warm the page cache
            with open(os.path.join(os.path.dirname(os.path.abspath(a.prefix)), f), "rb") as fh:
                while fh.read(1 << 24):
                    pass

    def tf_load():
        r = tf.train.load_checkpoint(a.prefix)
        return {k: r.get_tensor(k) for k in r.get_variable_to_shape_map()}

    jobs = []
    for n in names:
        jobs.append((f"load_variable `{n}`", "TensorFlow", lambda n=n: tf.train.load_variable(a.prefix, n)))
        jobs.append((f"load_variable `{n}`", "tf2npy", lambda n=n: tf2npy.load_variable(a.prefix, n)))
        jobs.append((f"load_variable `{n}`", "tf2npy, bfloat16='ml_dtypes'",
                     lambda n=n: tf2npy.load_variable(a.prefix, n, bfloat16="ml_dtypes")))
    jobs.append(("load (every tensor)", "TensorFlow load_checkpoint + get_tensor", tf_load))
    jobs.append(("load (every tensor)", "tf2npy", lambda: tf2npy.load(a.prefix)))
    jobs.append(("load (every tensor)", "tf2npy, bfloat16='ml_dtypes'",
                 lambda: tf2npy.load(a.prefix, bfloat16="ml_dtypes")))
    work = tempfile.mkdtemp(prefix="bench-st-", dir=os.path.dirname(os.path.abspath(a.prefix)))
    out = os.path.join(work, "model.safetensors")
    data = next(os.path.join(os.path.dirname(os.path.abspath(a.prefix)), f)
                for f in os.listdir(os.path.dirname(os.path.abspath(a.prefix)))
                if f.startswith(os.path.basename(a.prefix) + ".data-"))

    def tf_save_file():
        r = tf.train.load_checkpoint(a.prefix)
        arrays = {}
        for k, dt in r.get_variable_to_dtype_map().items():
            if dt == tf.string:
                continue
            v = r.get_tensor(k)
            if dt == tf.bfloat16:
                v = v.view(np.uint16).view(ml_dtypes.bfloat16)
            arrays[k] = v
        save_file(arrays, out)
        os.remove(out)

    def cli(args):
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.path.exists(out):
            os.remove(out)

    w = "write model.safetensors"
    jobs.append((w, "TensorFlow reader + save_file", tf_save_file))
    jobs.append((w, "tf2npy -o model.safetensors", lambda: cli([a.cli, a.prefix, "-q", "-o", out])))
    jobs.append((w, "cp of the data file", lambda: cli(["cp", data, out])))
    res = {(w, who): ([], []) for w, who, _ in jobs}
    for _ in range(a.runs):
        for what, who, fn in jobs:
            if what.startswith("write"):
                os.sync()  # no dirty pages from the previous writer throttle this one
            w, c = timed(fn)
            res[(what, who)][0].append(w)
            res[(what, who)][1].append(c)
    print(f"Checkpoint {a.prefix}; tensors: {', '.join(names)}; {a.runs} runs, medians.\n")
    print("| call | reader | wall s | CPU s | wall vs TensorFlow |")
    print("|---|---|---:|---:|---:|")
    base = {}
    for (what, who), (walls, cpus) in res.items():
        w, c = statistics.median(walls), statistics.median(cpus)
        if who.startswith("TensorFlow"):
            base[what] = w
        ratio = w / base[what] if what in base and base[what] > 0 else float("nan")
        print(f"| {what} | {who} | {w:.3f} | {c:.3f} | {ratio:.2f}x |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
