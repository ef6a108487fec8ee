"""`fit`'s input pipelines, built by Keras's own array adapter and kept for the next fit over
the same arrays: a warm process's trials mostly train on the same split.

`model.fit(x, y)` builds a tf.data pipeline over the arrays on every call (its array adapter:
two to four traced map functions, ~10-20 ms each for the training and the validation set);
this hands `fit` that same pipeline, built once. It yields the same batches in the same
order, so a history is the one `fit(x, y)` gives, bit for bit: the shuffle is Keras's, drawn
inside the pipeline by a `tf.random.shuffle` whose seeds are fixed when its map function is
traced, from TensorFlow's global seed alone (a new graph's op seeds count from zero), and
every iteration (every epoch, every fit) draws that same permutation again, as Keras's does.
So a shuffled pipeline is kept per global seed, and not at all when none is set.

Only arrays that cannot change are kept by their memory (the scaled MNIST of data.py and its
views are read only): a pipeline holds a copy of the arrays it was built from, so an array
written in place would go on training on its old numbers.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import tensorflow as tf
from keras.src.trainers.data_adapters import get_data_adapter
from tensorflow.python.eager import context

KEPT_BYTES = 64 * 2**20
"""How much of the arrays a process keeps copies of in its pipelines: a study's small trials
(2,000 training and 5,000 validation images are 22 MB), not the notebook's 55,000 training
images (172 MB, rebuilt per fit as Keras does: 20 ms beside epochs of seconds)."""

_kept: OrderedDict[tuple[Any, ...], tuple[tf.data.Dataset, np.ndarray, np.ndarray]] = OrderedDict()


def fit_pipeline(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool) -> Any:
    """What `model.fit(x, y, batch_size=batch_size, shuffle=shuffle)` iterates over, as a
    dataset for `fit(dataset, shuffle=False)` (or `validation_data=dataset`)."""
    seed = context.global_seed() if shuffle else None
    key = _key(x, y, batch_size, seed) if seed is not None or not shuffle else None
    if key is not None and (kept := _kept.get(key)) is not None:
        _kept.move_to_end(key)
        return kept[0]
    adapter = get_data_adapter(x=x, y=y, batch_size=batch_size, shuffle=shuffle)
    # The adapter knows its batch count, its pipeline does not (a flat_map): told, `fit` runs
    # its epochs as over the arrays, without running out of data to learn the count.
    dataset = adapter.get_tf_dataset().apply(
        tf.data.experimental.assert_cardinality(adapter.num_batches)
    )
    if key is not None and _bytes(x, y) <= KEPT_BYTES:
        _kept[key] = (dataset, x, y)  # the arrays too: their memory is the key
        while sum(_bytes(x, y) for _, x, y in _kept.values()) > KEPT_BYTES:
            _kept.popitem(last=False)
    return dataset


def _bytes(x: np.ndarray, y: np.ndarray) -> int:
    return x.nbytes + y.nbytes


def _key(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int | None) -> tuple[Any, ...] | None:
    if not (_unchangeable(x) and _unchangeable(y)):
        return None
    return (_memory(x), _memory(y), batch_size, seed)


def _unchangeable(array: Any) -> bool:
    """A numpy array read only, as is every array it views."""
    while isinstance(array, np.ndarray):
        if array.flags.writeable:
            return False
        array = array.base
    return array is None


def _memory(array: np.ndarray) -> tuple[Any, ...]:
    return (array.__array_interface__["data"][0], array.shape, array.strides, array.dtype.str)
