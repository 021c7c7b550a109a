"""The baseline tf2npy replaces: TensorFlow's checkpoint reader + np.savez.

usage: tf_savez.py PREFIX OUT.npz [compressed]
With `compressed`: np.savez_compressed (zlib level 6, one stream per member).
"""
import sys

import numpy as np
import tensorflow as tf

reader = tf.train.load_checkpoint(sys.argv[1])
arrays = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
save = np.savez_compressed if sys.argv[3:] == ["compressed"] else np.savez
save(sys.argv[2], **arrays)
