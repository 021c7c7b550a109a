"""Slice reassembly and entry-count scaling (issue 15, items 2 and 3).

usage: python3 bench/slices.py [N ...]     (default: 1000 10000 100000 1000000)

For each N, crafted V2 checkpoints are written by the test suite's bundle writer
(`cargo test --test it make_bench_inputs -- --ignored`): `rows` ([N, 1] uint32 saved as
one slice per row), `cols` ([1, N], one slice per column), `v1rows.ckpt` (a V1
checkpoint of [N, 1] float32, one slice per row) and `empty` (N empty float32 tensors,
snappy index). Then the release binary (`cargo build --release` first) runs
`--list`, `--verify` and a conversion to .npz on each, 3 times; the table gives the
median wall time, the median user+sys CPU time and the largest peak RSS
(`/usr/bin/time -v`; `BENCH_RUNS=1` for one run each, `TF2NPY_BIN` for another binary).
Near-linear scaling: time per slice stays flat as N grows
tenfold.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TF2NPY_BIN") or os.path.join(ROOT, "target", "release", "tf2npy")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


def timed(args):
    p = subprocess.run(["/usr/bin/time", "-v"] + args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(args)}\n{p.stderr[-2000:]}")
    def field(name):
        return re.search(rf"{name}: *([0-9.:]+)", p.stderr).group(1)
    wall = field(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\)").split(":")
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall)))
    cpu = float(field("User time \(seconds\)")) + float(field("System time \(seconds\)"))
    return wall, cpu, int(field(r"Maximum resident set size \(kbytes\)"))


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1000, 10000, 100000, 1000000]
    print("| input | N | operation | wall s (median) | CPU s (median) | CPU µs per slice/entry | peak RSS MiB |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
            env = dict(os.environ, TF2NPY_BENCH_DIR=d, TF2NPY_BENCH_N=str(n))
            subprocess.run(
                ["cargo", "test", "-q", "--test", "it", "make_bench_inputs", "--", "--ignored"],
                cwd=ROOT, env=env, check=True, capture_output=True)
            for inp in ["rows", "cols", "v1rows.ckpt", "empty"]:
                prefix = os.path.join(d, inp)
                ops = [("--list", [prefix, "--list"]), ("--verify", [prefix, "--verify", "-q"])]
                if inp != "empty":
                    ops.append(("-o x.npz", [prefix, "-q", "-o", os.path.join(d, "x.npz")]))
                for label, args in ops:
                    res = [timed([BIN] + args) for _ in range(RUNS)]
                    wall = statistics.median(r[0] for r in res)
                    cpu = statistics.median(r[1] for r in res)
                    rss = max(r[2] for r in res) / 1024
                    print(f"| {inp} | {n:,} | `{label}` | {wall:.3f} | {cpu:.3f} | "
                          f"{cpu / n * 1e6:.2f} | {rss:.1f} |", flush=True)


if __name__ == "__main__":
    main()
