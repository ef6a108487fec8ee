"""TensorFlow as a training process wants it: its threads sized to the slot, its chatter off."""

from __future__ import annotations

import os

from service.config import Settings


def configure_tensorflow(settings: Settings) -> None:
    import tensorflow as tf

    threads = settings.training_threads or max(1, (os.cpu_count() or 1) // settings.worker_slots)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
    _quiet_tensorflow()


def _quiet_tensorflow() -> None:
    """A teacher watching the log wants our lines, not TensorFlow's start-up chatter."""
    import absl.logging
    import keras

    absl.logging.set_verbosity(absl.logging.ERROR)
    keras.utils.disable_interactive_logging()  # no progress bars, whatever `verbose` says
