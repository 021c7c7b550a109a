#!/usr/bin/env python3
"""tf2npy benchmark: converts a large checkpoint generated at run time and compares
with `cp` of the same data file, `cp` of a file as large as the output, and TensorFlow's
reader + np.savez; then a checkpoint of 20,000 small tensors.

usage: python3 bench/bench.py [--scale 1] [--runs 5] [--tf-python PY] [--work DIR]
                              [--small 20000] [--skip-small]

Needs a Python with tensorflow-cpu and numpy for the checkpoints and the baseline
(--tf-python, default: python3). Reports medians of --runs runs (wall time, user+sys CPU
time, throughput, peak RSS, all via GNU time) as Markdown tables on stdout. The cp jobs,
the conversions and the listing run round-robin (one run of each in turn), so drift
hits them alike. Page cache is warm (the data file is read once before timing), as for a
user converting a checkpoint they just wrote or downloaded.
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
    """Runs cmd under /usr/bin/time, returns (wall seconds, user+sys seconds, peak RSS
    bytes).

    Peak RSS comes from GNU time's %M (the command's own maximum resident set), not from
    wait4 in this process: a child forked from Python starts with Python's RSS.
    """
    stats = os.path.join(os.path.dirname(os.path.abspath(__file__)), "work", ".rss")
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", stats] + cmd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')}")
    with open(stats) as f:
        u, s, kib = f.read().split()[-3:]
    return wall, float(u) + float(s), int(kib) * 1024


def clean(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def measure(name, cmd, runs, out=None, env=None):
    walls, cpus, rss = [], [], []
    for _ in range(runs):
        if out:
            clean(out)
        os.sync()  # no dirty pages from the previous run throttle this one
        w, c, r = run(cmd, env)
        walls.append(w)
        cpus.append(c)
        rss.append(r)
    if out:
        clean(out)
    return {"name": name, "cmd": " ".join(cmd), "wall": statistics.median(walls),
            "walls": walls, "cpu": statistics.median(cpus), "rss": max(rss)}


def measure_interleaved(jobs, runs):
    """Like measure for several (name, cmd, out) jobs, run round-robin, so that drift in
    the machine's state (other tenants, disk write-back) hits every job alike and the
    ratios between them stay meaningful."""
    res = {name: ([], [], []) for name, _, _ in jobs}
    for _ in range(runs):
        for name, cmd, out in jobs:
            if out:
                clean(out)
            os.sync()
            w, c, r = run(cmd)
            res[name][0].append(w)
            res[name][1].append(c)
            res[name][2].append(r)
            if out:
                clean(out)
    return [{"name": name, "cmd": " ".join(cmd), "wall": statistics.median(res[name][0]),
             "walls": res[name][0], "cpu": statistics.median(res[name][1]),
             "rss": max(res[name][2])} for name, cmd, _ in jobs]


def print_table(rows, size, cp, tf):
    print("| job | median wall | median user+sys | throughput | peak RSS | vs cp | TF+savez / this |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        thr = size / r["wall"] / 2**20 if "list" not in r["name"] else float("nan")
        vs_cp = r["wall"] / cp
        vs_tf = (tf / r["wall"]) if tf else float("nan")
        wall = f"{r['wall'] * 1000:.1f} ms" if r["wall"] < 1 else f"{r['wall']:.2f} s"
        print(f"| {r['name']} | {wall} | {r['cpu']:.2f} s | {thr:.0f} MiB/s | "
              f"{r['rss'] / 2**20:.1f} MiB | {vs_cp:.2f}x | {vs_tf:.2f}x |")
    print()
    for r in rows:
        print(f"- {r['name']}: `{r['cmd']}` runs: {', '.join(f'{w:.3f}' for w in r['walls'])} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--compress-runs", type=int, default=3)
    ap.add_argument("--tf-python", default="python3")
    ap.add_argument("--work", default=os.path.join(ROOT, "bench", "work"))
    ap.add_argument("--skip-tf", action="store_true", help="skip the TensorFlow baseline")
    ap.add_argument("--skip-compress", action="store_true")
    ap.add_argument("--small", type=int, default=20_000, help="tensors in the small checkpoint")
    ap.add_argument("--skip-small", action="store_true")
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
    # A file as large as the .npz output: `cp` of it is the cost of writing the output's
    # bytes once (the bfloat16 tensor widens, so the output is larger than the input).
    sized = os.path.join(a.work, f"outsized.bin.ckpt{a.scale}")
    if not os.path.exists(sized):
        subprocess.run([exe, prefix, "-q", "-o", sized + ".npz"], check=True)
        os.replace(sized + ".npz", sized)
    rows = measure_interleaved([
        ("cp data file", ["cp", data, out_cp], out_cp),
        ("cp output-sized file", ["cp", sized, out_cp], out_cp),
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
          f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    print_table(rows, size, cp, tf)

    if a.skip_small:
        return
    small = os.path.join(a.work, f"small{a.small}")
    if not os.path.exists(small + ".index"):
        subprocess.run([a.tf_python, os.path.join(HERE, "make_small.py"), small, str(a.small)],
                       check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    sdata = small + ".data-00000-of-00001"
    ssize = os.path.getsize(sdata)
    # The file system's own cost of a folder of that many files: cp -r of the output.
    sdir = os.path.join(a.work, "small_dir")
    clean(sdir)
    folder = subprocess.run([exe, small, "-q", "-o", sdir + "/"], stderr=subprocess.PIPE)
    sjobs = [
        ("cp data file", ["cp", sdata, out_cp], out_cp),
        ("tf2npy -> .npz (stored)", [exe, small, "-q", "-o", out_npz], out_npz),
        ("tf2npy --verify", [exe, small, "-q", "--verify"], None),
    ]
    sref = os.path.join(a.work, "small_dir_ref")
    if folder.returncode == 0:
        os.replace(sdir, sref)
        sjobs[1:1] = [("cp -r of the output folder", ["cp", "-r", sref, sdir], sdir),
                      ("tf2npy -> folder", [exe, small, "-q", "-o", sdir + "/"], sdir)]
    else:
        print(f"(folder output of the small checkpoint failed, not timed: "
              f"{folder.stderr.decode(errors='replace').strip()[:200]})")
    srows = measure_interleaved(sjobs, a.runs)
    clean(sref)
    stf = None
    if not a.skip_tf:
        srows.append(measure("TensorFlow reader + np.savez",
                             [a.tf_python, os.path.join(HERE, "tf_savez.py"), small, out_npz],
                             max(1, min(a.runs, 3)), out_npz,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")))
        stf = srows[-1]["wall"]
    print()
    print(f"Input: {a.small} float32 tensors of 1-4 KiB, {ssize} bytes of tensor data")
    print()
    print_table(srows, ssize, srows[0]["wall"], stf)


if __name__ == "__main__":
    main()
