#!/usr/bin/env python3
"""A/B of two tf2npy binaries on the benchmark checkpoint, interleaved.

usage: python3 bench/ab.py OLD_BINARY NEW_BINARY [--runs 11] [--work bench/work]

Needs the checkpoint bench/bench.py made (WORK/ckpt1.*). Each round runs, in turn and
each after `sync`: cp of the data file, OLD -> .npz, NEW -> .npz, OLD -> folder,
NEW -> folder; so both binaries meet the same machine state. Prints medians, minimums
and every run, in seconds. Build the old binary from a worktree, e.g.
`git worktree add /tmp/old REV && cargo build --release --manifest-path /tmp/old/Cargo.toml`.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    a = ap.parse_args()
    w = a.work
    prefix = os.path.join(w, "ckpt1")
    data = prefix + ".data-00000-of-00001"
    if not os.path.exists(data):
        raise SystemExit(f"{data} is missing: run bench/bench.py first")
    outs = [os.path.join(w, n) for n in ("copy.data", "out.npz", "out_dir")]
    jobs = {
        "cp": ["cp", data, outs[0]],
        "old .npz": [a.old, prefix, "-q", "-o", outs[1]],
        "new .npz": [a.new, prefix, "-q", "-o", outs[1]],
        "old folder": [a.old, prefix, "-q", "-o", outs[2] + "/"],
        "new folder": [a.new, prefix, "-q", "-o", outs[2] + "/"],
    }

    def clean():
        for p in outs:
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.remove(p)

    with open(data, "rb") as f:  # warm the page cache
        while f.read(1 << 24):
            pass
    walls = {k: [] for k in jobs}
    for _ in range(a.runs):
        for name, cmd in jobs.items():
            clean()
            os.sync()
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            walls[name].append(time.perf_counter() - t0)
    clean()
    for name, v in walls.items():
        runs = " ".join(f"{x:.3f}" for x in v)
        print(f"{name:10s} median {statistics.median(v):.3f}  min {min(v):.3f}  runs {runs}")


if __name__ == "__main__":
    main()
