#!/usr/bin/env python3
"""tf2npy benchmark for Keras HDF5: a ~1 GiB Keras 3 `.weights.h5` (made by Keras at run
time: four Dense layers of 8192 x 8192 float32) converted to `.npz`, against `cp` of the
file and against the tool a user would reach for instead, h5py + `np.savez`
(`{p: f[p][()] for every dataset}`). A second input is the same weights saved with h5py's
gzip + shuffle chunking, which exercises the chunked path (cp is not comparable there).

usage: python3 bench/bench_hdf5.py --h5-python /work/tfvenv/bin/python [--runs 5]

Needs a Python with keras, h5py and numpy (--h5-python) for the input and the baseline.
Medians of --runs runs, jobs round-robin, page cache warm, os.sync() before each run,
CPU time (user + sys) and peak RSS from GNU time %U %S %M (bench.py's
run/measure_interleaved); the load average (`uptime`) before and after is printed, since
walls on a shared machine mean little without it.
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import ROOT, clean, measure_interleaved  # noqa: E402

MAKE = r'''
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, keras, h5py
out, chunked = sys.argv[1], sys.argv[2]
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((8192,))] + [keras.layers.Dense(8192) for _ in range(4)])
m.save_weights(out)
with h5py.File(out) as src, h5py.File(chunked, "w") as dst:
    def copy(name, obj):
        if isinstance(obj, h5py.Dataset):
            kw = dict(chunks=True, compression="gzip", compression_opts=1, shuffle=True) if obj.ndim else {}
            dst.create_dataset(name, data=obj[()], **kw)
    src.visititems(copy)
'''

BASELINE = r'''
import sys, h5py, numpy as np
src, out = sys.argv[1], sys.argv[2]
arrays = {}
with h5py.File(src) as f:
    f.visititems(lambda n, o: arrays.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
np.savez(out, **arrays)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--h5-python", default="python3")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--work", default=os.path.join(ROOT, "bench", "work"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "tf2npy")
    src = os.path.join(a.work, "big.weights.h5")
    chunked = os.path.join(a.work, "big_gzip.h5")
    if not (os.path.exists(src) and os.path.exists(chunked)):
        subprocess.run([a.h5_python, "-c", MAKE, src, chunked], check=True)
    size = os.path.getsize(src)
    for f in (src, chunked):
        with open(f, "rb") as fh:  # warm the page cache
            while fh.read(1 << 24):
                pass
    out = os.path.join(a.work, "out.npz")
    cp_out = os.path.join(a.work, "cp.h5")
    jobs = [
        ("cp of the .weights.h5", ["cp", src, cp_out], cp_out),
        ("tf2npy → .npz (stored)", [exe, src, "-q", "-o", out], out),
        ("h5py + np.savez", [a.h5_python, "-c", BASELINE, src, out], out),
        ("tf2npy gzip+shuffle chunked → .npz", [exe, chunked, "-q", "-o", out], out),
        ("h5py + np.savez (gzip+shuffle chunked)", [a.h5_python, "-c", BASELINE, chunked, out], out),
    ]
    load_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    res = measure_interleaved(jobs, a.runs)
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    for p in (out, cp_out):
        clean(p)
    cp = res[0]["wall"]
    base = res[2]["wall"]
    print(f"input: {size / 2**20:.0f} MiB .weights.h5 ({os.path.getsize(chunked) / 2**20:.0f} MiB chunked copy)")
    print(f"load before: {load_before}\nload after:  {load_after}\n")
    print("| job | median wall | median CPU (user + sys) | peak RSS | vs `cp` (wall) | vs `cp` (CPU) "
          "| h5py + `np.savez` / this (wall) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in res:
        rel = base if "chunked" not in r["name"] else res[4]["wall"]
        print(f"| {r['name']} | {r['wall']:.2f} s | {r['cpu']:.2f} s | {r['rss'] / 2**20:.1f} MiB | "
              f"{r['wall'] / cp:.2f}x | {r['cpu'] / max(res[0]['cpu'], 1e-9):.2f}x | {rel / r['wall']:.2f}x |")
    print()
    for r in res:
        print(f"{r['name']}: wall " + " ".join(f"{w:.2f}" for w in r["walls"]))


if __name__ == "__main__":
    main()
