"""One experiment as the plain Keras program a learner writes, as a script or a notebook.

The program is the service's training, step for step (see service/ml/data.py and
service/ml/train.py): MNIST scaled by 1/255, the first `validation_size` training images held
out, the next `train_size` trained on (or, with `validation_split`, the last fraction of those
held out by `fit` itself), `keras.utils.set_random_seed(seed)` before the model is built, `fit`
with the spec's batch size and epochs (shuffled, as Keras does by default), the test set scored
from one forward pass as the service scores it. With the same library versions it gives the
same history and score. Both formats come from one list of cells, so they cannot drift.
"""

from __future__ import annotations

import html
import json
import textwrap
from dataclasses import dataclass
from typing import Any

from service.domain import Experiment
from service.export.keras_code import (
    EARLY_STOPPING,
    REDUCE_LR_ON_PLATEAU,
    call_code,
    keras_code,
    literal,
)
from service.insight.evaluation import KERAS_EPSILON
from service.mnist import IMAGE_SHAPE
from service.spec.experiment import ExperimentSpec
from service.spec.layers import Input

# The batch of the service's one forward pass over the test set (service/ml/evaluation.py,
# without importing TensorFlow here; tests/ml/test_keras_code.py holds the two equal). A batch
# size can change a float32 result's last bit, and the aim here is the very same numbers.
EVALUATION_BATCH = 1024
# The compile and fit arguments the program writes; a test holds the spec to this list, so a
# new argument cannot be left out of the script without a failing test.
COMPILE_FIELDS_WRITTEN = frozenset({"optimizer", "loss", "metrics"})
FIT_FIELDS_WRITTEN = frozenset(
    {
        "epochs",
        "batch_size",
        "validation_size",
        "validation_split",
        "train_size",
        "seed",
        "early_stopping",
        "reduce_lr_on_plateau",
    }
)
# Fit fields the script leaves out on purpose: layer health is the service's own measurement
# (inference-mode passes on validation images after each epoch), with no effect on training.
FIT_FIELDS_SERVICE_ONLY = frozenset({"layer_health"})
# The model's input: MNIST's images, written first whether or not the spec has an Input layer.
FED_INPUT = Input(type="Input", shape=list(IMAGE_SHAPE))
VERSION_NAMES = {
    "python": "Python",
    "tensorflow": "TensorFlow",
    "keras": "Keras",
    "numpy": "numpy",
    "kernels": "kernels:",
}


@dataclass(frozen=True)
class Cell:
    """One step of the program: what it does (Markdown) and its code."""

    markdown: str
    code: str = ""


def cells(experiment: Experiment) -> list[Cell]:
    spec = ExperimentSpec.model_validate(experiment.spec)
    return [
        Cell(_introduction(experiment)),
        Cell(
            "Load MNIST: Keras downloads it, or `MNIST_PATH` names a local `mnist.npz` in the "
            "same layout.",
            _LOAD,
        ),
        Cell(_split_text(spec), _split_code(spec)),
        Cell(
            "The net: the same seed gives the same initial weights, dropout masks and "
            "shuffling as the service.",
            _model_code(spec),
        ),
        Cell("Compile it.", _compile_code(spec, xla=experiment.versions.get("kernels") == "XLA")),
        Cell("Train it; `history.history` holds each epoch's loss and accuracy.", _fit_code(spec)),
        Cell("Score it on the test set.", _evaluate_code()),
    ]


def script(experiment: Experiment) -> str:
    """A runnable `.py`: each cell's text as comments above its code."""
    parts = []
    for cell in cells(experiment):
        comment = "\n".join(f"# {line}".rstrip() for line in _wrap(_plain(cell.markdown)))
        parts.append(f"{comment}\n{cell.code}" if cell.code else comment)
    return "\n\n".join(parts) + "\n"


def notebook(experiment: Experiment) -> dict[str, Any]:
    """The same cells as an nbformat 4.5 notebook (unexecuted)."""
    ipynb_cells: list[dict[str, Any]] = []
    for number, cell in enumerate(cells(experiment), start=1):
        # Escaped: a name or description is shown as text, never rendered as HTML.
        markdown = html.escape(cell.markdown, quote=False)
        ipynb_cells.append(_ipynb_cell("markdown", f"text-{number}", markdown))
        if cell.code:
            ipynb_cells.append(_ipynb_cell("code", f"code-{number}", cell.code))
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": ipynb_cells,
    }


def notebook_json(experiment: Experiment) -> str:
    """The notebook as the text of an `.ipynb` file."""
    return json.dumps(notebook(experiment), indent=1, ensure_ascii=False) + "\n"


def _ipynb_cell(kind: str, cell_id: str, text: str) -> dict[str, Any]:
    cell: dict[str, Any] = {
        "cell_type": kind,
        "id": cell_id,
        "metadata": {},
        "source": text.splitlines(keepends=True),
    }
    if kind == "code":
        cell |= {"execution_count": None, "outputs": []}
    return cell


# The introduction -------------------------------------------------------------------------
def _introduction(experiment: Experiment) -> str:
    lines = [f"# {_user_text(experiment.name)}"]
    if experiment.description:
        lines += ["", _user_text(experiment.description)]
    lines += [
        "",
        f"Experiment `{experiment.id}` of the MNIST lab, written as plain Keras: load MNIST, "
        "split it, build the `Sequential` net, `compile`, `fit`, `evaluate`. With the same "
        "library versions it gives the same history as the service, epoch for epoch.",
        "",
    ]
    if experiment.seed is not None:
        lines.append(f"- seed: {experiment.seed}")
    if experiment.spec_hash:
        lines.append(f"- spec sha256: `{experiment.spec_hash}`")
    if experiment.versions:
        trained_with = ", ".join(
            f"{VERSION_NAMES.get(name, name)} {_user_text(version)}"
            for name, version in experiment.versions.items()
        )
        lines.append(f"- trained with {trained_with}")
    else:
        lines.append(f"- not trained yet ({experiment.status.value})")
    return "\n".join(lines)


def _user_text(text: str) -> str:
    """A person's text on one line: no line break (of any kind) can end a comment in the script
    and start code, no control character can make the file unreadable."""
    printable = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(printable.split())


def _plain(markdown: str) -> str:
    """Markdown for a comment: the title loses its `#`, which a comment would double."""
    return markdown.removeprefix("# ")


def _wrap(markdown: str) -> list[str]:
    lines: list[str] = []
    for line in markdown.splitlines():
        indent = "  " if line.startswith("- ") else ""
        lines += textwrap.wrap(line, width=96, subsequent_indent=indent) or [""]
    return lines


# The code -----------------------------------------------------------------------------------
_LOAD = """\
import os

import keras
import numpy as np

mnist_path = os.environ.get("MNIST_PATH")
if mnist_path:
    with np.load(mnist_path) as mnist:
        x_train_full, y_train_full = mnist["x_train"], mnist["y_train"]
        x_test, y_test = mnist["x_test"], mnist["y_test"]
else:
    (x_train_full, y_train_full), (x_test, y_test) = keras.datasets.mnist.load_data()"""


def _split_text(spec: ExperimentSpec) -> str:
    fit = spec.fit
    held_out = (
        f"the first {fit.validation_size:,} training images validate"
        if fit.validation_size
        else "no images are held out for validation"
    )
    trained = f"training uses the next {fit.train_size:,}" if fit.train_size else "the rest train"
    if fit.validation_split is not None:
        taken = f"the first {fit.train_size:,}" if fit.train_size else "all"
        return (
            f"Scale the pixels to [0, 1]; training uses {taken} training images, of which "
            f"`fit(validation_split={fit.validation_split!r})` holds out the last "
            f"{fit.validation_split * 100:g}% to validate."
        )
    return f"Scale the pixels to [0, 1]; {held_out}, {trained}."


def _split_code(spec: ExperimentSpec) -> str:
    fit = spec.fit
    lines = [
        "# The service narrows the pixels to float32 here; Keras does the same when it is fed.",
        "x_train_full, x_test = x_train_full / 255.0, x_test / 255.0",
    ]
    if fit.validation_size:
        size = fit.validation_size
        lines += [
            f"x_valid, x_train = x_train_full[:{size}], x_train_full[{size}:]",
            f"y_valid, y_train = y_train_full[:{size}], y_train_full[{size}:]",
        ]
    else:
        lines.append("x_train, y_train = x_train_full, y_train_full")
    if fit.train_size:
        size = fit.train_size
        lines.append(f"x_train, y_train = x_train[:{size}], y_train[:{size}]")
    return "\n".join(lines)


def _model_code(spec: ExperimentSpec) -> str:
    layers = [keras_code(FED_INPUT)]
    # An Input in the spec says the same as FED_INPUT (the spec accepts no other shape).
    layers += [keras_code(layer) for layer in spec.layers if not isinstance(layer, Input)]
    listed = "".join(f"    {layer},\n" for layer in layers)
    return (
        f"keras.utils.set_random_seed({spec.fit.seed})\n"
        f"model = keras.Sequential([\n{listed}])\n"
        "model.summary()"
    )


def _compile_code(spec: ExperimentSpec, *, xla: bool) -> str:
    compiled = spec.compile
    if xla:
        note = (
            "# The service trained this with XLA's kernels (TRAINING_PATH=xla): jit_compile=True\n"
            "# gives the same numbers to the last digit (TensorFlow's own kernels differ there).\n"
        )
        jit = "    jit_compile=True,\n"
    else:
        note = (
            "# The service also passes steps_per_execution=64 (64 batches per graph call): that\n"
            "# is only faster, the numbers are the same, so it is left out here.\n"
        )
        jit = ""
    return (
        note + "model.compile(\n"
        f"    loss={literal(compiled.loss)},\n"
        f"    optimizer={keras_code(compiled.optimizer)},\n"
        f"    metrics={literal(list(compiled.metrics))},\n"
        f"{jit})"
    )


def _fit_code(spec: ExperimentSpec) -> str:
    fit = spec.fit
    arguments = [
        "x_train",
        "y_train",
        f"epochs={fit.epochs}",
        f"batch_size={fit.batch_size}",
    ]
    if fit.validation_size:
        arguments.append("validation_data=(x_valid, y_valid)")
    if fit.validation_split is not None:
        # Keras's own split: the last fraction of x_train, what service/ml/data.py holds out.
        arguments.append(f"validation_split={literal(fit.validation_split)}")
    callbacks = [
        call_code(call, callback)
        for call, callback in (
            (EARLY_STOPPING, fit.early_stopping),
            (REDUCE_LR_ON_PLATEAU, fit.reduce_lr_on_plateau),
        )
        if callback is not None
    ]
    if callbacks:
        arguments.append(f"callbacks=[{', '.join(callbacks)}]")
    listed = "".join(f"    {argument},\n" for argument in arguments)
    return f"history = model.fit(\n{listed})"


def _evaluate_code() -> str:
    # The service's arithmetic (service/insight/evaluation.py), so that the score is its very
    # number; model.evaluate would round differently and add any kernel_regularizer's penalty.
    clip = repr(KERAS_EPSILON)
    return (
        "# The service scores the test set from one forward pass (its confusion matrix comes\n"
        "# from the same pass): the mean cross-entropy of the predicted probabilities, clipped\n"
        "# as Keras clips them, and the share of right answers. Unlike model.evaluate, it\n"
        "# leaves out any kernel_regularizer's penalty: the loss is the test set's alone.\n"
        f"probabilities = model.predict(x_test, batch_size={EVALUATION_BATCH})\n"
        "right = probabilities[np.arange(len(y_test)), y_test].astype(np.float64)\n"
        f"test_loss = float(-np.log(np.clip(right, {clip}, 1 - {clip})).mean())\n"
        "test_accuracy = float((probabilities.argmax(axis=1) == y_test).mean())\n"
        'print(f"test loss {test_loss:.4f}, test accuracy {test_accuracy:.4f}")'
    )
