"""Models a warm training process keeps from one job to the next, for the graphs Keras traced.

Keras traces a new train, test and predict function for every model it fits: a second or so
per job on our CPUs, and, job after job, TensorFlow's warning that its functions retrace too
often. A study's trials mostly share an architecture and differ in the optimizer or the seed,
so the process keeps the last models it trained, one per architecture, and a job of the same
architecture trains that model again instead of a new one.

Nothing of the kept model's past reaches the new job's numbers. The job still builds and
compiles its own seeded model, drawing the same random numbers as a fresh process; the kept
model then takes all of that model's state (weights, BatchNormalization's statistics, every
random seed generator's state) and its optimizer. The test and predict functions are kept
(they depend on the layers, the loss and the metrics, which the key fixes, and Keras resets the
metrics before each use); the train function is kept only for an optimizer of the same
arguments, whose every variable (step count, learning rate, moments) is then reset to a new
one's. Otherwise it is traced anew for the new optimizer, as in a fresh process.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import keras

from service.spec.experiment import ExperimentSpec

KEPT_ARCHITECTURES = 4
"""How many models a process keeps: a study alternating a few architectures reuses each."""


class TracedModels:
    """A warm process's kept models, by architecture. `take` one for a job; `keep` it after."""

    def __init__(self, size: int = KEPT_ARCHITECTURES) -> None:
        self.size = size
        self._kept: OrderedDict[str, tuple[keras.Model, dict[str, Any]]] = OrderedDict()
        self.reused = 0
        """Jobs that trained a kept model (for the log and the tests)."""

    def take(self, spec: ExperimentSpec, fresh: keras.Model) -> keras.Model:
        """The model the job trains: `fresh` (seeded, built, compiled for this job), or the
        kept model of its architecture with all of `fresh`'s state. Taken out until `keep`: a
        job that raised leaves nothing half-trained behind."""
        found = self._kept.pop(_architecture(spec, fresh), None)
        if found is None:
            return fresh
        kept, optimizer = found
        if not _same_shapes(kept, fresh):
            return fresh  # not the same variables after all: trace anew rather than guess
        _take_state(kept, fresh, same_optimizer=optimizer == _optimizer(spec))
        self.reused += 1
        return kept

    def keep(self, spec: ExperimentSpec, model: keras.Model) -> None:
        """After a job: keep its model for the next of its architecture."""
        self._kept[_architecture(spec, model)] = (model, _optimizer(spec))
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)


def _architecture(spec: ExperimentSpec, model: keras.Model) -> str:
    """What the kept test and predict functions depend on: layers, loss, metrics, and how the
    model executes."""
    return json.dumps(
        {
            "layers": spec.model_dump(mode="json")["layers"],
            "loss": spec.compile.loss,
            "metrics": list(spec.compile.metrics),
            "steps_per_execution": model.steps_per_execution,
            "jit_compile": model.jit_compile,
        },
        sort_keys=True,
    )


def _optimizer(spec: ExperimentSpec) -> dict[str, Any]:
    return spec.compile.optimizer.model_dump(mode="json")


def _same_shapes(kept: keras.Model, fresh: keras.Model) -> bool:
    shapes = [tuple(v.shape) for v in kept.variables]
    return shapes == [tuple(v.shape) for v in fresh.variables]


def _take_state(kept: keras.Model, fresh: keras.Model, *, same_optimizer: bool) -> None:
    for mine, theirs in zip(kept.variables, fresh.variables, strict=True):
        mine.assign(theirs)
    if same_optimizer and kept.train_function is not None and kept.optimizer.built:
        # A new optimizer's variables, built as a fresh process's first step builds them.
        fresh.optimizer.build(fresh.trainable_variables)
        kept_slots, fresh_slots = kept.optimizer.variables, fresh.optimizer.variables
        if len(kept_slots) == len(fresh_slots):
            for mine, theirs in zip(kept_slots, fresh_slots, strict=True):
                mine.assign(theirs)
            return
    # A different optimizer: the job's own, and a train function traced for it.
    kept.optimizer = fresh.optimizer
    kept.train_function = None
    kept._compile_config = fresh._compile_config  # what model.save records as compiled with
