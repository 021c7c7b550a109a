"""Writes the many-small-tensors benchmark checkpoint with real TensorFlow (bench.py).

usage: make_small.py PREFIX [COUNT]
COUNT (default 20,000) float32 variables of 1-4 KiB each (256-1024 elements, about
50 MiB in all), as a model with optimizer slots has.
"""
import sys

import numpy as np
import tensorflow as tf

prefix = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
rng = np.random.default_rng(0)
vs = {f"layer{i // 100:03d}/v{i % 100:02d}":
      tf.Variable(rng.standard_normal(int(rng.integers(256, 1025)), dtype=np.float32))
      for i in range(count)}
root = tf.Module()
for k, v in vs.items():
    setattr(root, k.replace("/", "_"), v)
ckpt = tf.train.Checkpoint(root=root)
print(ckpt.write(prefix))
