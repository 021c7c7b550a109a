#!/usr/bin/env python3
"""Size and speed of `--compress-level` on three kinds of data, with 1 and 2 threads.

usage: python3 bench/levels.py BINARY [--mib 128] [--levels 0,1,2,3,4,5,6,7,8,9]
                               [--runs 1] [--tf-python PY] [--work bench/work]

Makes (once, with real TensorFlow: bench/make_levels.py) three checkpoints of MIB MiB of
float32 output each: random normal float32, float32 with 256 distinct values (quantized
weights), and random normal bfloat16 (widened to float32 on output). For every kind,
level and thread count, runs `tf2npy --compress-level L -j T` (runs interleaved over
thread counts and levels) and prints the median wall time, user+sys CPU time, and the
archive size against the stored one; then `np.savez_compressed` (TensorFlow's reader, one
zlib stream per member at level 6) for reference.
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from ab import clean, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--mib", type=int, default=128)
    ap.add_argument("--levels", default="0,1,2,3,4,5,6,7,8,9")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--tf-python", default="python3")
    ap.add_argument("--skip-numpy", action="store_true")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    a = ap.parse_args()
    d = os.path.join(a.work, f"levels{a.mib}")
    kinds = ["normal", "quantized", "bf16"]
    if not all(os.path.exists(os.path.join(d, k + ".index")) for k in kinds):
        subprocess.run([a.tf_python, os.path.join(HERE, "make_levels.py"), d, str(a.mib)],
                       check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    out = os.path.join(a.work, "levels.npz")
    levels = [int(x) for x in a.levels.split(",")]
    threads = [int(x) for x in a.threads.split(",")]
    print(f"{a.mib} MiB of float32 output per kind; {a.runs} run(s) each, medians; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    print()
    print("| data | level | stored size | size | ratio | " +
          " | ".join(f"-j{t} wall | -j{t} user+sys" for t in threads) +
          " | -j1/-j2 wall |")
    print("|---|---:|---:|---:|---:|" + "---:|" * (2 * len(threads)) + "---:|")
    for kind in kinds:
        prefix = os.path.join(d, kind)
        clean(out)
        subprocess.run([a.binary, prefix, "-q", "-o", out], check=True)
        stored = os.path.getsize(out)
        res = {(lv, t): [] for lv in levels for t in threads}
        sizes = {}
        for _ in range(a.runs):
            for lv in levels:
                for t in threads:
                    clean(out)
                    os.sync()
                    res[(lv, t)].append(timed([a.binary, prefix, "-q", "--compress-level", str(lv),
                                               "-j", str(t), "-o", out], a.work))
                    size = os.path.getsize(out)
                    # The archive does not depend on the thread count.
                    assert sizes.setdefault(lv, size) == size, (kind, lv, t)
        for lv in levels:
            cols = []
            walls = {}
            for t in threads:
                w = statistics.median(r[0] for r in res[(lv, t)])
                c = statistics.median(r[1] for r in res[(lv, t)])
                walls[t] = w
                cols.append(f"{w:.2f} s | {c:.2f} s")
            speed = f"{walls[1] / walls[2]:.2f}x" if 1 in walls and 2 in walls else "-"
            print(f"| {kind} | {lv} | {stored / 2**20:.1f} MiB | {sizes[lv] / 2**20:.1f} MiB | "
                  f"{sizes[lv] / stored:.3f} | " + " | ".join(cols) + f" | {speed} |")
        if not a.skip_numpy:
            clean(out)
            w, c, _ = timed([a.tf_python, os.path.join(HERE, "tf_savez.py"), prefix, out,
                             "compressed"], a.work)
            print(f"| {kind} | np.savez_compressed (6) | {stored / 2**20:.1f} MiB | "
                  f"{os.path.getsize(out) / 2**20:.1f} MiB | {os.path.getsize(out) / stored:.3f} | "
                  f"{w:.2f} s | {c:.2f} s |" + " - |" * (2 * len(threads) - 2) + " - |")
        clean(out)


if __name__ == "__main__":
    main()
