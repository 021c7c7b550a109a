"""Writes the three deflate-level benchmark checkpoints with real TensorFlow (levels.py).

usage: make_levels.py DIR MIB
DIR/normal: random normal float32; DIR/quantized: float32 with 256 distinct values
(8-bit quantized weights, dequantized); DIR/bf16: random normal bfloat16, which widens
to float32 on output (the low 16 bits of every value are zero). Each has MIB MiB of
float32 output.
"""
import os
import sys

import numpy as np
import tensorflow as tf

out, mib = sys.argv[1], int(sys.argv[2])
n = mib * (1 << 20) // 4
rng = np.random.default_rng(0)
normal = rng.standard_normal(n, dtype=np.float32)
levels = np.linspace(-1, 1, 256, dtype=np.float32)
kinds = {
    "normal": tf.Variable(normal),
    "quantized": tf.Variable(levels[rng.integers(0, 256, n, dtype=np.uint8)]),
    "bf16": tf.Variable(tf.cast(normal, tf.bfloat16)),
}
os.makedirs(out, exist_ok=True)
for name, v in kinds.items():
    print(tf.train.Checkpoint(w=v).write(os.path.join(out, name)))
