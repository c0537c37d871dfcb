"""audiomnist-edge: spoken-digit recognition on small devices.

This package is the device runtime: it needs NumPy, click and a TFLite
interpreter, never TensorFlow or librosa. Training (``audiomnist_edge.train``)
and conversion (``audiomnist_edge.convert``) need the ``[train]`` extra.
"""

__version__ = "0.1.0"
