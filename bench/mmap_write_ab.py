#!/usr/bin/env python3
"""A/B of the ways to write a large output whose size is known up front (issue 16 item 2):
`write()` of 1 MiB pieces (what tf2npy does) against memory-mapped output (create,
`ftruncate` to the final size, copy into mapped windows, unmap / `msync` per window),
with and without pre-faulting the window (`MAP_POPULATE`).

usage: python3 bench/mmap_write_ab.py [--mib 1024] [--runs 5] [--window-mib 64] [--work DIR]

The payload (random float32 bytes, made once in memory) is the same for every method, so
the figures are the kernel's cost of getting bytes into the page cache of a new file:
`write()` copies them into fresh page-cache pages; a mapped store first faults each page
in (allocating and zero-filling it for a file that is a hole), then copies. Methods run
interleaved, each after `sync`, outputs deleted in between; medians of wall and user+sys
CPU seconds of this process.
"""
import argparse
import mmap
import os
import resource
import statistics
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PIECE = 1 << 20


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def by_write(path, data):
    with open(path, "wb", buffering=0) as f:
        for i in range(0, len(data), PIECE):
            f.write(data[i:i + PIECE])


def by_map(path, data, window, populate, sync):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, len(data))
        flags = mmap.MAP_SHARED | (mmap.MAP_POPULATE if populate else 0)
        for at in range(0, len(data), window):
            n = min(window, len(data) - at)
            m = mmap.mmap(fd, n, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE, offset=at)
            for i in range(0, n, PIECE):
                m[i:i + PIECE] = data[at + i:at + min(i + PIECE, n)]
            if sync:
                m.flush()
            m.close()
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--window-mib", type=int, default=64)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    data = memoryview(np.random.default_rng(0).standard_normal(a.mib << 18, dtype=np.float32)
                      .tobytes())
    w = a.window_mib << 20
    path = os.path.join(a.work, "mmap_ab.out")
    methods = {
        "write() 1 MiB pieces": lambda: by_write(path, data),
        f"mmap {a.window_mib} MiB windows": lambda: by_map(path, data, w, False, False),
        f"mmap {a.window_mib} MiB windows, MAP_POPULATE": lambda: by_map(path, data, w, True, False),
        f"mmap {a.window_mib} MiB windows, msync each": lambda: by_map(path, data, w, False, True),
        "mmap whole file": lambda: by_map(path, data, len(data), False, False),
    }
    res = {k: [] for k in methods}
    for _ in range(a.runs):
        for name, fn in methods.items():
            if os.path.exists(path):
                os.remove(path)
            os.sync()
            t0, c0 = time.perf_counter(), cpu()
            fn()
            res[name].append((time.perf_counter() - t0, cpu() - c0))
    os.remove(path)
    print(f"{a.mib} MiB of float32, {a.runs} interleaved runs, medians; "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    print("| method | median wall | median user+sys | runs (wall) |")
    print("|---|---:|---:|---|")
    for name, rs in res.items():
        print(f"| {name} | {statistics.median(r[0] for r in rs):.3f} s | "
              f"{statistics.median(r[1] for r in rs):.3f} s | "
              f"{' '.join(f'{r[0]:.2f}' for r in rs)} |")


if __name__ == "__main__":
    main()
