"""A Python client and command line for the MNIST lab service, usable without TensorFlow."""

from mnist_lab.client import Lab, LabError, Run, Study

__all__ = ["Lab", "LabError", "Run", "Study"]
