"""The baseline tf2npy replaces: TensorFlow's checkpoint reader + np.savez.

usage: tf_savez.py PREFIX OUT.npz
"""
import sys

import numpy as np
import tensorflow as tf

reader = tf.train.load_checkpoint(sys.argv[1])
arrays = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
np.savez(sys.argv[2], **arrays)
