"""What a trained experiment says about itself: test-set evaluation, layer health, diagnostics.

Plain numpy and Pillow only: the API renders and diagnoses without TensorFlow.
"""
