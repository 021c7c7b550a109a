#!/usr/bin/env python3
"""A/B of tf2npy binaries on a benchmark checkpoint, interleaved, wall and CPU time.

usage: python3 bench/ab.py BINARY [BINARY...] [--runs 11] [--busy] [--prefix P]
                           [--forms npz,folder] [--work bench/work] [--label NAME...]

Needs a checkpoint (default WORK/ckpt1, which bench/bench.py makes). Each round runs, in
turn and each after `sync`: `cp` of the data file, `cp` of a file as large as the `.npz`
output (the physical limit: writing the output's bytes once), then every binary -> every
output form; so all of them meet the same machine state. Every run goes through GNU time,
which gives wall seconds, user + sys CPU seconds and peak RSS. CPU time is the steady
figure on a shared machine (wall time swings by 2x between hours); both are printed.

--busy keeps one core busy with a spinning process for the whole measurement (the
"other core is taken" case: a second thread of ours then competes for one core).

Build an old binary from a worktree, e.g.
`git worktree add /tmp/old REV && cargo build --release --manifest-path /tmp/old/Cargo.toml`.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd, work):
    """Runs cmd under GNU time: (wall s, user+sys s, peak RSS bytes)."""
    stats = os.path.join(work, ".time")
    p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", stats] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    with open(stats) as f:
        e, u, s, m = f.read().split()[-4:]
    return float(e), float(u) + float(s), int(m) * 1024


def clean(p):
    if os.path.isdir(p):
        shutil.rmtree(p)
    elif os.path.exists(p):
        os.remove(p)


def spinner():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_rounds(jobs, runs, work):
    """jobs: list of (name, cmd, out); returns {name: [(wall, cpu, rss), ...]}."""
    res = {name: [] for name, _, _ in jobs}
    for _ in range(runs):
        for name, cmd, out in jobs:
            if out:
                clean(out)
            os.sync()
            res[name].append(timed(cmd, work))
            if out:
                clean(out)
    return res


def table(res, base=None, out=sys.stdout):
    """Markdown table of medians; ratios against job `base` (wall and CPU)."""
    print("| job | median wall | median user+sys | peak RSS | wall vs base | runs (wall) |", file=out)
    print("|---|---:|---:|---:|---:|---|", file=out)
    bw = statistics.median(r[0] for r in res[base]) if base else None
    for name, rs in res.items():
        w = statistics.median(r[0] for r in rs)
        c = statistics.median(r[1] for r in rs)
        m = max(r[2] for r in rs)
        ratio = f"{w / bw:.2f}x" if bw else "-"
        runs = " ".join(f"{r[0]:.2f}" for r in rs)
        print(f"| {name} | {w:.3f} s | {c:.3f} s | {m / 2**20:.1f} MiB | {ratio} | {runs} |", file=out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--label", action="append", help="names for the binaries, in order")
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--prefix", help="checkpoint prefix (default WORK/ckpt1)")
    ap.add_argument("--forms", default="npz,folder")
    ap.add_argument("--no-cp", action="store_true")
    ap.add_argument("--extra", default="", help="extra tf2npy arguments, space-separated")
    ap.add_argument("--out", help="folder for the outputs (default WORK); e.g. a tmpfs "
                    "such as /dev/shm to take the disk out of the figures")
    a = ap.parse_args()
    w = a.work
    prefix = a.prefix or os.path.join(w, "ckpt1")
    data = prefix + ".data-00000-of-00001"
    if not os.path.exists(data):
        raise SystemExit(f"{data} is missing: run bench/bench.py first")
    labels = a.label or [os.path.basename(b) for b in a.binaries]
    o = a.out or w
    os.makedirs(o, exist_ok=True)
    outs = {"npz": os.path.join(o, "ab.npz"), "folder": os.path.join(o, "ab_dir") + "/",
            "npy": os.path.join(o, "ab.npy")}
    extra = a.extra.split()
    # A file as large as the .npz output, for `cp` of the output's size.
    sized = os.path.join(w, "outsized.bin")
    if not a.no_cp and not os.path.exists(sized + "." + os.path.basename(prefix)):
        subprocess.run([a.binaries[-1], prefix, "-q", "-o", sized + ".npz"], check=True)
        os.replace(sized + ".npz", sized + "." + os.path.basename(prefix))
    sized += "." + os.path.basename(prefix)
    copy = os.path.join(o, "ab.copy")
    jobs = []
    if not a.no_cp:
        jobs.append(("cp data file", ["cp", data, copy], copy))
        jobs.append(("cp output-sized file", ["cp", sized, copy], copy))
    for form in a.forms.split(","):
        for label, b in zip(labels, a.binaries):
            jobs.append((f"{label} -> {form}", [b, prefix, "-q", "-o", outs[form]] + extra,
                         outs[form].rstrip("/")))
    with open(data, "rb") as f:  # warm the page cache
        while f.read(1 << 24):
            pass
    spin = spinner() if a.busy else None
    try:
        res = run_rounds(jobs, a.runs, w)
    finally:
        if spin:
            spin.kill()
    print(f"{a.runs} interleaved rounds, {'one core kept busy' if a.busy else 'no extra load'}; "
          f"outputs in {o}; load average before: {os.getloadavg()[0]:.1f}")
    table(res, base=None if a.no_cp else "cp data file")


if __name__ == "__main__":
    main()
