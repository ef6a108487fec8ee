"""Everything that touches TensorFlow/Keras: data, building, training, inference.

Import submodules explicitly; this package itself imports nothing heavy.
"""
