"""Serving trained models: a compiled forward pass per model, and a bounded cache of them.

`model.predict` costs ~46 ms a call and `model(x)` ~4 ms in eager mode; a `tf.function` traced
once for any batch of 28x28 images runs one image in about 0.3 ms. So models are loaded once,
compiled and warmed up on load, and kept in an LRU cache keyed by experiment id.

Compiled means traced, then frozen (weights folded in as constants) and run by a session that
executes its ops on the calling thread. An eager call of the traced function hands the graph
to TensorFlow's inter-op thread pool and sleeps until it is done: on a busy 2-core machine the
two thread wake-ups cost more than the forward pass of a small net itself. Even so a session
call costs a few hundred microseconds; nets made only of layers `service.ml.numpy_forward`
implements are served by it instead, once its answers have been checked against Keras's own,
and no graph is built for them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from service import metrics
from service.ml.numpy_forward import numpy_forward
from service.mnist import CLASSES, IMAGE_SHAPE

log = logging.getLogger(__name__)


Forward = Callable[[np.ndarray], np.ndarray]
# The numpy forward pass must agree with TensorFlow's on these images (the zero image and
# random ones; in [0, 1] as served) to float32 rounding, and pick the same digits.
CHECK_IMAGES = 16
CHECK_TOLERANCE = 1e-5


def load_keras_model(path: str | Path) -> keras.Model:
    """A saved `.keras` model for inference only (no optimizer state, no compiled metrics)."""
    return keras.models.load_model(path, compile=False)


def frozen_forward(traced: tf.types.experimental.ConcreteFunction) -> Forward:
    """The traced forward pass as a frozen graph run on the caller's thread.

    The session owns a copy of the weights, so later changes to the Keras model do not reach
    it; serving never changes a loaded model. It is closed when the last reference goes.
    """
    frozen = convert_variables_to_constants_v2(traced)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(frozen.graph.as_graph_def(), name="")
    config = tf.compat.v1.ConfigProto(
        inter_op_parallelism_threads=-1,  # negative: every op on the thread calling run
        allow_soft_placement=True,  # a GPU where there is one, the CPU for what it lacks
    )
    session = tf.compat.v1.Session(graph=graph, config=config)
    run: Forward = session.make_callable(
        graph.get_tensor_by_name(frozen.outputs[0].name),
        [graph.get_tensor_by_name(frozen.inputs[0].name)],
    )
    return run


class Predictor:
    """One model's forward pass, compiled once for float32 batches of any size.

    Calling it from many threads at once is safe: neither the compiled graph nor the numpy
    forward pass holds state that a call changes.
    """

    def __init__(self, model: keras.Model, *, allow_numpy: bool = True) -> None:
        self.model = model
        self.frozen = False
        # A net numpy serves needs no graph: tracing and freezing one is most of a load's time
        # (about 0.3 s of 0.45 for the notebook's nets), all of it holding the API's GIL.
        self.numpy = allow_numpy and self._serve_numpy_if_it_agrees()
        if not self.numpy:
            self._run = self._compiled()
        self._warm_up()

    def _compiled(self) -> Forward:
        traced = tf.function(
            self._forward,
            input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32)],
        ).get_concrete_function()
        zeros = np.zeros((1, *IMAGE_SHAPE), dtype=np.float32)
        try:
            run = frozen_forward(traced)
            run(zeros)  # some graphs freeze but fail only when run
            self.frozen = True
            return run
        except Exception as error:  # any graph the traced function serves, only slower
            log.warning(
                "serving the traced function instead of a frozen graph: %s: %s",
                type(error).__name__,
                error,
            )
            return lambda batch: traced(tf.constant(batch)).numpy()

    def _serve_numpy_if_it_agrees(self) -> bool:
        """Serve the numpy forward pass when the net allows it and it answers as Keras does."""
        forward = numpy_forward(self.model)
        if forward is None:
            return False
        images = np.random.default_rng(0).random((CHECK_IMAGES, *IMAGE_SHAPE), dtype=np.float32)
        images[0] = 0.0
        expected = np.asarray(self.model(images, training=False), dtype=np.float32)
        try:
            answered = np.asarray(forward(images), dtype=np.float32)
        except Exception as error:  # a layer configuration we read wrongly: TF serves it
            log.warning("numpy forward pass failed: %s: %s", type(error).__name__, error)
            return False
        if (
            answered.shape != expected.shape
            or not np.allclose(answered, expected, rtol=0.0, atol=CHECK_TOLERANCE)
            or not np.array_equal(answered.argmax(axis=1), expected.argmax(axis=1))
        ):
            gap = np.abs(answered - expected).max() if answered.shape == expected.shape else None
            log.warning("numpy forward pass disagrees with TensorFlow (by %s); serving TF", gap)
            return False
        self._run = forward
        return True

    def _forward(self, images: tf.Tensor) -> tf.Tensor:
        return self.model(images, training=False)

    def _warm_up(self) -> None:
        """Run once so the first request pays no graph optimisation, and check the output."""
        probabilities = self.predict(np.zeros((1, *IMAGE_SHAPE), dtype=np.float32))
        if probabilities.shape != (1, CLASSES):
            raise ValueError(
                f"the model answers shape {probabilities.shape[1:]} per image; "
                f"serving needs {CLASSES} probabilities"
            )

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """float32 [n, 28, 28] in [0, 1] -> float32 [n, 10] probabilities."""
        if batch.ndim != 3 or batch.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"expected a batch of shape (n, 28, 28), got {batch.shape}")
        return np.asarray(self._run(batch.astype(np.float32, copy=False)))


@dataclass
class _Loading:
    """A load in progress: every caller asking for the key meanwhile waits on `result`."""

    result: Future[Predictor] = field(default_factory=Future)
    keep: bool = True  # False once evicted mid-load: answer the waiters, cache nothing


class ModelCache:
    """Warm predictors by experiment id, at most `capacity`, least recently used evicted first.

    Each model is loaded once even when many requests ask for it at the same moment; loads of
    different models proceed in parallel, outside the lock.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._ready: OrderedDict[str, Predictor] = OrderedDict()
        self._loading: dict[str, _Loading] = {}

    def get(self, experiment_id: str, load: Callable[[], keras.Model]) -> Predictor:
        """The cached predictor, or `load()`'s model wrapped, warmed and cached.

        If `load` raises, every caller waiting on this key gets the same error and nothing is
        cached, so a later request tries again.
        """
        with self._lock:
            predictor = self._ready.get(experiment_id)
            if predictor is not None:
                self._ready.move_to_end(experiment_id)
                metrics.CACHE_HITS.inc()
                return predictor
            metrics.CACHE_MISSES.inc()
            loading = self._loading.get(experiment_id)
            owner = loading is None
            if loading is None:
                loading = self._loading[experiment_id] = _Loading()
        if not owner:
            return loading.result.result()
        started = time.perf_counter()
        try:
            predictor = Predictor(load())
        except BaseException as error:
            with self._lock:
                del self._loading[experiment_id]
            loading.result.set_exception(error)
            raise
        metrics.MODEL_LOAD_SECONDS.observe(time.perf_counter() - started)
        with self._lock:
            del self._loading[experiment_id]
            if loading.keep:
                self._ready[experiment_id] = predictor
                while len(self._ready) > self.capacity:
                    self._ready.popitem(last=False)
        loading.result.set_result(predictor)
        return predictor

    def evict(self, experiment_id: str) -> bool:
        """Forget a model (its experiment was deleted); a load in flight will not be cached."""
        with self._lock:
            loading = self._loading.get(experiment_id)
            if loading is not None:
                loading.keep = False
            return self._ready.pop(experiment_id, None) is not None

    def keys(self) -> list[str]:
        """Cached experiment ids, least recently used first."""
        with self._lock:
            return list(self._ready)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ready)

    def __contains__(self, experiment_id: object) -> bool:
        with self._lock:
            return experiment_id in self._ready

    def clear(self) -> None:
        with self._lock:
            for loading in self._loading.values():
                loading.keep = False
            self._ready.clear()
