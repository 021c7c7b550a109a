#!/usr/bin/env python3
"""TFRecord benchmark (issue 12): a ~1 GiB TFRecord of tf.train.Example generated at run
time (250k Examples: a ~3 KB random `image` bytes feature, an int64 `label`, a 64-float
`embedding`, a ragged int64 `tokens`), uncompressed and GZIP, converted to .npz by
tf2npy, against `cp` of the file, TensorFlow (TFRecordDataset + batched
tf.io.parse_example + np.savez) and PyPI `tfrecord` (+ np.savez), in one interleaved run.

usage: python3 bench/bench_records.py --tf-python /tmp/tfvenv/bin/python [--scale 1]
       [--runs 3] [--work DIR] [--skip-baselines]

--scale N repeats the generated file N times (N times the records; peak RSS at 4x shows
memory does not grow with the record count).
Medians of --runs runs; wall time via perf_counter, CPU (user+sys) and peak RSS via GNU
time. Page cache warm (each input is read once before timing).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

GEN = r'''
import sys, numpy as np, tensorflow as tf
path, n, comp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
opts = tf.io.TFRecordOptions(compression_type=comp) if comp else None
with tf.io.TFRecordWriter(path, options=opts) as w:
    for i in range(n):
        f = {
            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[rng.bytes(3000)])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 1000])),
            "embedding": tf.train.Feature(float_list=tf.train.FloatList(
                value=rng.standard_normal(64, dtype=np.float32))),
            "tokens": tf.train.Feature(int64_list=tf.train.Int64List(
                value=rng.integers(0, 30000, size=i % 17))),
        }
        w.write(tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString())
'''

TF_JOB = r'''
import sys, numpy as np, tensorflow as tf
path, out, comp = sys.argv[1], sys.argv[2], sys.argv[3]
spec = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "embedding": tf.io.FixedLenFeature([64], tf.float32),
    "tokens": tf.io.RaggedFeature(tf.int64),
}
ds = tf.data.TFRecordDataset(path, compression_type=comp).batch(1024).map(
    lambda s: tf.io.parse_example(s, spec))
cols = {k: [] for k in spec}
for b in ds:
    for k in spec:
        cols[k].append(b[k])
image = tf.concat(cols["image"], 0).numpy()
tokens = tf.concat(cols["tokens"], 0)
lens = np.array([len(x) for x in image], dtype="<i8")
np.savez(out,
         **{"image/bytes": np.frombuffer(b"".join(image), dtype="|u1"),
            "image/value_splits": np.concatenate([[0], np.cumsum(lens)]).astype("<i8"),
            "label": tf.concat(cols["label"], 0).numpy(),
            "embedding": tf.concat(cols["embedding"], 0).numpy(),
            "tokens/values": tokens.flat_values.numpy(),
            "tokens/row_splits": tokens.row_splits.numpy().astype("<i8")})
'''

PYPI_JOB = r'''
import sys, numpy as np
from tfrecord.reader import tfrecord_loader
path, out, comp = sys.argv[1], sys.argv[2], sys.argv[3]
desc = {"image": "byte", "label": "int", "embedding": "float", "tokens": "int"}
image, label, emb, tokens, splits = [], [], [], [], [0]
for r in tfrecord_loader(path, None, desc, compression_type=comp or None):
    image.append(bytes(r["image"]))
    label.append(r["label"][0])
    emb.append(r["embedding"])
    tokens.append(r["tokens"])
    splits.append(splits[-1] + len(r["tokens"]))
lens = np.array([len(x) for x in image], dtype="<i8")
np.savez(out,
         **{"image/bytes": np.frombuffer(b"".join(image), dtype="|u1"),
            "image/value_splits": np.concatenate([[0], np.cumsum(lens)]).astype("<i8"),
            "label": np.array(label, dtype="<i8"),
            "embedding": np.stack(emb).astype("<f4"),
            "tokens/values": np.concatenate(tokens).astype("<i8"),
            "tokens/row_splits": np.array(splits, dtype="<i8")})
'''


def timed(cmd):
    """(wall s, cpu s, peak RSS MiB) of cmd under GNU time."""
    rss = os.path.join(WORK, ".time")
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", rss] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')[-2000:]}")
    kib, user, sys_ = open(rss).read().split()[-3:]
    return wall, float(user) + float(sys_), int(kib) / 1024


def clean(p):
    if os.path.isdir(p):
        shutil.rmtree(p)
    elif os.path.exists(p):
        os.remove(p)


def main():
    global WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--tf-python", default="python3")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--exe", help="a built tf2npy (default: cargo build --release)")
    a = ap.parse_args()
    WORK = a.work
    os.makedirs(WORK, exist_ok=True)
    exe = a.exe
    if not exe:
        subprocess.run(["cargo", "build", "--release", "--locked", "-q"], cwd=ROOT, check=True)
        exe = os.path.join(ROOT, "target", "release", "tf2npy")
    base = 250_000
    n = base * a.scale
    inputs = {}
    for comp, name in [("", "data.tfrecord"), ("GZIP", "data.tfrecord.gz")]:
        one = os.path.join(WORK, f"s1_{name}")
        if not os.path.exists(one):
            print(f"generating {one} ({base} records)", file=sys.stderr)
            subprocess.run([a.tf_python, "-c", GEN, one, str(base), comp], check=True,
                           stderr=subprocess.DEVNULL)
        p = one
        if a.scale > 1:
            # Scale N: the file N times over (concatenated records, or GZIP members; both
            # are valid TFRecord streams).
            p = os.path.join(WORK, f"s{a.scale}_{name}")
            if not os.path.exists(p):
                with open(p, "wb") as out:
                    for _ in range(a.scale):
                        with open(one, "rb") as f:
                            shutil.copyfileobj(f, out, 1 << 24)
        inputs[comp] = p
    out = os.path.join(WORK, "out.npz")
    jobs = [("cp of the uncompressed file", lambda: ["cp", inputs[""], out], inputs[""])]
    for comp, label in [("", "uncompressed"), ("GZIP", "GZIP")]:
        jobs.append((f"tf2npy -> .npz ({label})", lambda c=comp: [exe, inputs[c], "-o", out, "-q"], inputs[comp]))
        if not a.skip_baselines:
            jobs.append((f"TensorFlow parse_example + np.savez ({label})",
                         lambda c=comp: [a.tf_python, "-c", TF_JOB, inputs[c], out, c], inputs[comp]))
            jobs.append((f"PyPI tfrecord + np.savez ({label})",
                         lambda c=comp: [a.tf_python, "-c", PYPI_JOB, inputs[c], out, c.lower()], inputs[comp]))
    for p in inputs.values():
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass
    results = {name: [] for name, _, _ in jobs}
    for r in range(a.runs):
        for name, cmd, _ in jobs:
            clean(out)
            os.sync()
            results[name].append(timed(cmd()))
            print(f"run {r}: {name}: {results[name][-1]}", file=sys.stderr)
    clean(out)
    size = os.path.getsize(inputs[""]) / 2**20
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
               max(x[2] for x in v)) for k, v in results.items()}
    cp = med[jobs[0][0]][0]
    print(f"\n{n} records, {size:.0f} MiB uncompressed, "
          f"{os.path.getsize(inputs['GZIP']) / 2**20:.0f} MiB GZIP; medians of {a.runs} runs\n")
    print("| job | median wall | median CPU | peak RSS | vs `cp` | vs tf2npy (same input) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, _, _ in jobs:
        w, c, rss = med[name]
        label = "uncompressed" if "uncompressed" in name or name.startswith("cp") else "GZIP"
        ours = med[f"tf2npy -> .npz ({label})"][0]
        print(f"| {name} | {w:.2f} s | {c:.2f} s | {rss:.1f} MiB | {w / cp:.2f}x | {w / ours:.2f}x |")
    for name, _, _ in jobs:
        print(f"{name}: " + " ".join(f"{x[0]:.2f}" for x in results[name]), file=sys.stderr)


if __name__ == "__main__":
    main()
