"""Keras's and TensorFlow's process-wide state across a warm process's jobs: what each job
leaves behind that the next must not inherit, and what Keras would rebuild that it may keep.

Forgetting a job (`forget_job`) clears Keras's session, as a fresh process has it, and first
drops the gradient functions the job's traces registered with TensorFlow. A train step's
optimizer update goes through `ReplicaContext.all_reduce`, a `tf.custom_gradient` that, in a
traced graph, registers its gradient in TensorFlow's global gradient registry under a new
name, never removed; that function holds the whole traced graph. So every train function
traced for a new optimizer (traced.py retraces one per optimizer) stayed alive with its graph
after the model dropped it: 5,000-10,000 Python objects more per job (174k after 24 jobs of the
optimizers preset, 33k now), which every later collection walks again (clearing the session
took 100 ms by the 24th job, 8-30 ms now). The registry is read only while a
graph is being differentiated, that is while a function is traced; between jobs nothing is.

Saving (`save_model`) is `model.save` with the attribute skip-sets Keras builds to walk a
model's state kept for the process: Keras 3.15 caches each under `saving_attr_skipset_<type>`
but looks it up under `saving_attr_skiplist_<type>`, so every save built them all again (a
reference Layer, Optimizer, Metric... per saved object: 3-5 ms of a checkpoint). They
depend on Keras's classes only, and a session cleared between jobs would drop them anyway.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras.src.backend.common import global_state
from keras.src.saving import saving_lib
from tensorflow.python.framework import ops

CUSTOM_GRADIENT_PREFIX = "CustomGradient-"
"""How `tf.custom_gradient` names what it registers in a traced graph (custom_gradient.py)."""

SKIPSET_TYPES = ("Operation", "Layer", "Functional", "Sequential", "Metric", "Optimizer", "Loss")
"""The kinds of object whose skip-set saving or loading a model of ours asks Keras for."""
_SKIPSET_KEYS = ("saving_attr_skiplist_{}", "saving_attr_skipset_{}")
"""Where Keras 3.15 reads a skip-set, and where it writes one (and a fixed Keras would read)."""

_skipsets: dict[str, set[str]] = {}


def forget_job() -> None:
    """Between jobs: drop the traces' registered gradients, then clear Keras's session (which
    collects the garbage, now the replaced graphs' too)."""
    registry = ops._gradient_registry._registry
    for name in [name for name in registry if name.startswith(CUSTOM_GRADIENT_PREFIX)]:
        del registry[name]
    keras.backend.clear_session()


def keep_saving_skipsets() -> None:
    """Give Keras's saving its skip-sets from this process's own copy (built once)."""
    if not _skipsets:
        _skipsets.update({kind: saving_lib.get_attr_skipset(kind) for kind in SKIPSET_TYPES})
    for kind, skipset in _skipsets.items():
        for key in _SKIPSET_KEYS:
            global_state.set_global_attribute(key.format(kind), skipset)


def save_model(model: keras.Model, path: Path) -> None:
    """`model.save(path)`: the same file, without rebuilding Keras's skip-sets."""
    keep_saving_skipsets()
    model.save(path)
