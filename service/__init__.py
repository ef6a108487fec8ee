"""MNIST lab: Keras networks defined as JSON, trained by workers, served for digit recognition."""

__version__ = "0.1.0"
