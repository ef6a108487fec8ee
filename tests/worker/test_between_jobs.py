"""Between two jobs a warm training process forgets the last one (serve.py's `_forget`):
Keras's global state as a fresh process has it, the last job's objects collected, in one
collection of the garbage, not two."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import keras
import pytest

from service.worker.serve import _forget


def test_a_warm_process_forgets_a_job_in_one_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    collections: list[Any] = []
    collect = gc.collect
    monkeypatch.setattr(gc, "collect", lambda *args: collections.append(args) or collect(*args))
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    gone = weakref.ref(model)
    del model

    _forget()

    assert gone() is None
    assert len(collections) == 1
    assert keras.layers.Dense(1).name == "dense"  # the layer-name counters start again
