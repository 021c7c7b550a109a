#!/usr/bin/env python3
"""tf2npy benchmark: converts a large checkpoint generated at run time and compares
with `cp` of the same data file and with TensorFlow's reader + np.savez.

usage: python3 bench/bench.py [--scale 1] [--runs 5] [--tf-python PY] [--work DIR]

Needs a Python with tensorflow-cpu and numpy for the checkpoint and the baseline
(--tf-python, default: python3). Reports medians of --runs runs (wall time, throughput,
peak RSS via GNU time) as a Markdown table on stdout. cp, the two conversions and the
listing run round-robin (one run of each in turn), so drift hits them alike.
Page cache is warm (the data file is read once before timing), as for a user converting a
checkpoint they just wrote or downloaded.
"""
import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd, env=None):
    """Runs cmd under /usr/bin/time, returns (wall seconds, peak RSS bytes).

    Peak RSS comes from GNU time's %M (the command's own maximum resident set), not from
    wait4 in this process: a child forked from Python starts with Python's RSS.
    """
    rss_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "work", ".rss")
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    with open(rss_file) as f:
        kib = int(f.read().split()[-1])
    return wall, kib * 1024


def clean(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def measure(name, cmd, runs, out=None, env=None):
    walls, rss = [], []
    for _ in range(runs):
        if out:
            clean(out)
        os.sync()  # no dirty pages from the previous run throttle this one
        w, r = run(cmd, env)
        walls.append(w)
        rss.append(r)
    if out:
        clean(out)
    return {"name": name, "cmd": " ".join(cmd), "wall": statistics.median(walls),
            "walls": walls, "rss": max(rss)}


def measure_interleaved(jobs, runs):
    """Like measure for several (name, cmd, out) jobs, run round-robin, so that drift in
    the machine's state (other tenants, disk write-back) hits every job alike and the
    ratios between them stay meaningful."""
    res = {name: ([], []) for name, _, _ in jobs}
    for _ in range(runs):
        for name, cmd, out in jobs:
            if out:
                clean(out)
            os.sync()
            w, r = run(cmd)
            res[name][0].append(w)
            res[name][1].append(r)
            if out:
                clean(out)
    return [{"name": name, "cmd": " ".join(cmd), "wall": statistics.median(res[name][0]),
             "walls": res[name][0], "rss": max(res[name][1])} for name, cmd, _ in jobs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compress-runs", type=int, default=3)
    ap.add_argument("--tf-python", default="python3")
    ap.add_argument("--work", default=os.path.join(ROOT, "bench", "work"))
    ap.add_argument("--skip-tf", action="store_true", help="skip the TensorFlow baseline")
    ap.add_argument("--skip-compress", action="store_true")
    a = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--locked", "-q"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "tf2npy")
    os.makedirs(a.work, exist_ok=True)
    prefix = os.path.join(a.work, f"ckpt{a.scale}")
    if not os.path.exists(prefix + ".index"):
        subprocess.run([a.tf_python, os.path.join(HERE, "make_ckpt.py"), prefix, str(a.scale)], check=True,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    data = prefix + ".data-00000-of-00001"
    size = os.path.getsize(data)
    with open(data, "rb") as f:  # warm the page cache
        while f.read(1 << 24):
            pass
    out_npz = os.path.join(a.work, "out.npz")
    out_dir = os.path.join(a.work, "out_dir")
    out_cp = os.path.join(a.work, "copy.data")
    rows = measure_interleaved([
        ("cp data file", ["cp", data, out_cp], out_cp),
        ("tf2npy -> .npz (stored)", [exe, prefix, "-q", "-o", out_npz], out_npz),
        ("tf2npy -> folder", [exe, prefix, "-q", "-o", out_dir + "/"], out_dir),
        ("tf2npy --list", [exe, prefix, "--list"], None),
    ], a.runs)
    if not a.skip_compress:
        for t in (1, 2):
            rows.append(measure(f"tf2npy --compress --threads {t}",
                                [exe, prefix, "-q", "--compress", "--threads", str(t), "-o", out_npz],
                                a.compress_runs, out_npz))
    if not a.skip_tf:
        rows.append(measure("TensorFlow reader + np.savez",
                            [a.tf_python, os.path.join(HERE, "tf_savez.py"), prefix, out_npz],
                            max(1, min(a.runs, 3)), out_npz, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")))

    cp = rows[0]["wall"]
    tf = next((r["wall"] for r in rows if r["name"].startswith("TensorFlow")), None)
    print(f"Input: {size} bytes of tensor data ({size / 2**30:.2f} GiB), scale {a.scale}; "
          f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print()
    print("| job | median wall | throughput | peak RSS | vs cp | TF+savez / this |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        thr = size / r["wall"] / 2**20 if "list" not in r["name"] else float("nan")
        vs_cp = r["wall"] / cp
        vs_tf = (tf / r["wall"]) if tf else float("nan")
        wall = f"{r['wall'] * 1000:.1f} ms" if r["wall"] < 1 else f"{r['wall']:.2f} s"
        print(f"| {r['name']} | {wall} | {thr:.0f} MiB/s | {r['rss'] / 2**20:.1f} MiB | "
              f"{vs_cp:.2f}x | {vs_tf:.2f}x |")
    print()
    for r in rows:
        print(f"- {r['name']}: `{r['cmd']}` runs: {', '.join(f'{w:.3f}' for w in r['walls'])} s")


if __name__ == "__main__":
    main()
