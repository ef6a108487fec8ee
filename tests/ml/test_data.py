"""The two ways of holding out validation images: the notebook's first N, Keras's last fraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.ml.data import Mnist, keras_cached_mnist, probe, split


def _numbered_mnist() -> Mnist:
    """Image i is filled with i % 256 and labelled i % 10: a split shows which went where."""
    index = np.arange(60_000)
    return Mnist(
        x_train=np.broadcast_to((index % 256).astype(np.uint8)[:, None, None], (60_000, 28, 28)),
        y_train=(index % 10).astype(np.uint8),
        x_test=np.zeros((10_000, 28, 28), np.uint8),
        y_test=np.zeros(10_000, np.uint8),
    )


def test_validation_size_holds_out_the_first_images() -> None:
    data = split(_numbered_mnist(), validation_size=5000, train_size=1000)

    assert (len(data.x_valid), len(data.x_train)) == (5000, 1000)
    assert list(data.y_valid[:3]) == [0, 1, 2]
    assert list(data.y_train[:3]) == [0, 1, 2]  # image 5000 is labelled 0


def test_validation_split_holds_out_the_last_fraction_as_keras_does() -> None:
    data = split(_numbered_mnist(), validation_size=0, train_size=1000, validation_split=0.1)

    assert (len(data.x_train), len(data.x_valid)) == (900, 100)
    assert data.x_valid[0, 0, 0] * 255 == 900 % 256  # images 900..999 of the 1,000 given to fit
    assert data.x_train[-1, 0, 0] * 255 == 899 % 256


def test_validation_split_at_fit_time_gives_the_same_split() -> None:
    notebook_way = split(_numbered_mnist(), validation_size=0, train_size=1000)
    at_once = split(_numbered_mnist(), validation_size=0, train_size=1000, validation_split=0.25)

    later = notebook_way.holding_out_last(0.25)

    assert np.array_equal(later.y_valid, at_once.y_valid)
    assert np.array_equal(later.y_train, at_once.y_train)


def test_splits_of_one_load_share_its_scaled_images_which_no_job_can_change() -> None:
    """A warm training process splits every job from the same load: scaled once, read only."""
    mnist = _numbered_mnist()
    first = split(mnist, validation_size=5000, train_size=1000)
    second = split(mnist, validation_size=100, train_size=50)

    assert np.shares_memory(first.x_valid, second.x_valid)
    assert first.x_test is second.x_test
    assert first.x_valid[7, 0, 0] == np.float32(7 / 255.0)  # the notebook's float64 divide
    with pytest.raises(ValueError, match="read-only"):
        second.x_train[0, 0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        first.y_test[0] = 1


def test_probe_without_mnist_path_needs_a_cache_or_the_download_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr("service.ml.data.keras_cached_mnist", lambda: None)

    problem = probe(None, can_download=lambda: False)
    assert problem is not None
    assert "MNIST_PATH is not set" in problem
    assert "set MNIST_PATH to a local mnist.npz" in problem
    assert probe(None, can_download=lambda: True) is None


def test_probe_finds_mnist_in_keras_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mnist.npz").write_bytes(b"cached")

    assert keras_cached_mnist() == tmp_path / "datasets" / "mnist.npz"
    assert probe(None, can_download=lambda: False) is None


def test_probe_names_a_mnist_path_that_points_at_nothing(tmp_path: Path) -> None:
    assert (
        probe(str(tmp_path / "nothing.npz"))
        == f"MNIST_PATH={tmp_path / 'nothing.npz'} does not exist"
    )
