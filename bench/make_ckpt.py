"""Writes the benchmark checkpoint with real TensorFlow (run by bench.py).

usage: make_ckpt.py PREFIX SCALE
SCALE 1: one 1 GiB float32 tensor and one 256 MiB bfloat16 tensor (1.25 GiB of data);
SCALE k: k times as many elements in each.
"""
import sys

import numpy as np
import tensorflow as tf

prefix, scale = sys.argv[1], int(sys.argv[2])
n_f32 = scale * (1 << 30) // 4
n_bf16 = scale * (256 << 20) // 2
rng = np.random.default_rng(0)
big = tf.Variable(rng.standard_normal(n_f32, dtype=np.float32), name="big")
half = tf.Variable(tf.cast(rng.standard_normal(n_bf16, dtype=np.float32), tf.bfloat16), name="half")
ckpt = tf.train.Checkpoint(big=big, half=half)
print(ckpt.write(prefix))
