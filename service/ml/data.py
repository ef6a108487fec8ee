"""MNIST, loaded the notebook's way: pixels / 255, the first N training images for validation.

`MNIST_PATH` names a local `.npz` in Keras's layout (read with numpy: Keras's cache would
reject its hash); unset, the real `keras.datasets.mnist.load_data()` is used.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from service.errors import DataUnavailable
from service.spec.training import held_out_by_split

KEYS = ("x_train", "y_train", "x_test", "y_test")
EXPECTED = {
    "x_train": ((60_000, 28, 28), np.uint8),
    "y_train": ((60_000,), np.uint8),
    "x_test": ((10_000, 28, 28), np.uint8),
    "y_test": ((10_000,), np.uint8),
}


@dataclass(frozen=True)
class Mnist:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @cached_property
    def scaled(self) -> Split:
        """Every image / 255 as float32 and every label as int32, computed once per load: a
        warm training process (`load_mnist` keeps the load) splits each job from these. Read
        only, so that no job can change what the next one trains on."""
        # Divide in float64 like the notebook does, then narrow: the same bits Keras would feed.
        arrays = (
            (self.x_train / 255.0).astype(np.float32),
            self.y_train.astype(np.int32),
            (self.x_test / 255.0).astype(np.float32),
            self.y_test.astype(np.int32),
        )
        for array in arrays:
            array.flags.writeable = False
        x_train, y_train, x_test, y_test = arrays
        empty = x_train[:0], y_train[:0]
        return Split(x_train, y_train, *empty, x_test, y_test)


@dataclass(frozen=True)
class Split:
    """Float32 images in [0, 1] and integer labels, ready for `fit` and `evaluate`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def holding_out_last(self, validation_split: float) -> Split:
        """Keras's `fit(validation_split=...)`: the last fraction of the training images
        validates instead (what `model.fit` would do, done here so that one split is used)."""
        if len(self.x_valid):
            raise ValueError("validation_split holds out from training data already split")
        keep = len(self.x_train) - held_out_by_split(len(self.x_train), validation_split)
        return replace(
            self,
            x_train=self.x_train[:keep],
            y_train=self.y_train[:keep],
            x_valid=self.x_train[keep:],
            y_valid=self.y_train[keep:],
        )


def _check(arrays: dict[str, np.ndarray], source: str) -> Mnist:
    for key, (shape, dtype) in EXPECTED.items():
        if key not in arrays:
            raise DataUnavailable(f"{source} has no {key!r} array; expected Keras's MNIST layout")
        array = arrays[key]
        if array.shape != shape:
            raise DataUnavailable(f"{source}: {key} has shape {array.shape}, expected {shape}")
        if array.dtype != dtype and not np.can_cast(array.dtype, dtype, casting="same_kind"):
            raise DataUnavailable(f"{source}: {key} has dtype {array.dtype}, expected {dtype}")
    for key in ("y_train", "y_test"):
        if arrays[key].min() < 0 or arrays[key].max() > 9:
            raise DataUnavailable(f"{source}: {key} holds labels outside 0..9")
    return Mnist(*(np.asarray(arrays[key], dtype=np.uint8) for key in KEYS))


def load_npz(path: str | Path) -> Mnist:
    source = f"MNIST_PATH={path}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files if key in KEYS}
    except FileNotFoundError:
        raise DataUnavailable(f"{source} does not exist; point MNIST_PATH at mnist.npz") from None
    except Exception as error:  # numpy raises many kinds for a corrupt archive
        raise DataUnavailable(f"{source} is not a readable .npz file ({error})") from None
    return _check(arrays, source)


def load_keras() -> Mnist:
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:
        raise DataUnavailable(
            f"could not download MNIST ({error}); set MNIST_PATH to a local mnist.npz"
        ) from None
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _check(arrays, "keras.datasets.mnist")


@lru_cache(maxsize=2)
def load_mnist(mnist_path: str | None) -> Mnist:
    return load_npz(mnist_path) if mnist_path else load_keras()


def split(
    data: Mnist,
    *,
    validation_size: int,
    train_size: int | None = None,
    validation_split: float | None = None,
) -> Split:
    """The notebook's split: the first `validation_size` training images validate; or, with
    Keras's `validation_split`, the last fraction of the (first `train_size`) training images."""
    scaled = data.scaled
    x_train_full, y_train_full = scaled.x_train, scaled.y_train
    x_valid, x_train = x_train_full[:validation_size], x_train_full[validation_size:]
    y_valid, y_train = y_train_full[:validation_size], y_train_full[validation_size:]
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    notebook = Split(
        x_train=x_train,
        y_train=y_train,
        x_valid=x_valid,
        y_valid=y_valid,
        x_test=scaled.x_test,
        y_test=scaled.y_test,
    )
    return notebook if validation_split is None else notebook.holding_out_last(validation_split)


# Where keras.datasets.mnist.load_data() downloads from, and how long a reachability answer
# is kept: /health may be polled every second, and an offline DNS lookup can take that long.
MNIST_HOST = "storage.googleapis.com"
REACHABLE_TTL_SECONDS = 60.0
_reachable: tuple[float, bool] | None = None


def keras_cached_mnist() -> Path | None:
    """The mnist.npz an earlier load_data() left in Keras's cache, if any (no Keras import)."""
    homes = [os.environ.get("KERAS_HOME") or str(Path.home() / ".keras"), "/tmp/.keras"]
    for home in homes:
        path = Path(home) / "datasets" / "mnist.npz"
        if path.is_file():
            return path
    return None


def download_reachable(timeout: float = 1.0) -> bool:
    """Whether Keras's MNIST download host answers (remembered for REACHABLE_TTL_SECONDS)."""
    global _reachable
    now = time.monotonic()
    if _reachable is None or _reachable[0] < now:
        try:
            socket.create_connection((MNIST_HOST, 443), timeout=timeout).close()
            answer = True
        except OSError:
            answer = False
        _reachable = (now + REACHABLE_TTL_SECONDS, answer)
    return _reachable[1]


def probe(
    mnist_path: str | None, *, can_download: Callable[[], bool] = download_reachable
) -> str | None:
    """Why the data is unavailable, or None when it looks usable (cheap: no full load, no
    TensorFlow): MNIST_PATH must be a readable npz; unset, Keras's cache must hold MNIST or
    its download host must answer."""
    if mnist_path is None:
        if keras_cached_mnist() is not None or can_download():
            return None
        return (
            f"MNIST_PATH is not set, Keras has no cached mnist.npz and {MNIST_HOST} cannot be "
            "reached to download it; set MNIST_PATH to a local mnist.npz"
        )
    path = Path(mnist_path)
    if not path.is_file():
        return f"MNIST_PATH={mnist_path} does not exist"
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in KEYS if key not in npz.files]
    except Exception as error:
        return f"MNIST_PATH={mnist_path} is not a readable .npz file ({error})"
    if missing:
        return f"MNIST_PATH={mnist_path} lacks {', '.join(missing)}"
    return None
