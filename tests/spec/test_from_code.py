"""Keras code read with `ast` alone: the usual spellings, names assigned literals, the notebook's
split and callbacks; a round trip with the exporter; every refusal with its line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.export import notebook
from service.export.keras_code import KERAS_CALLS
from service.schemas.experiments import ExperimentCreate
from service.spec.experiment import ExperimentSpec
from service.spec.fingerprint import normalised_spec
from service.spec.from_code.reader import read_cells, read_code
from service.spec.from_code.results import CodeRefused
from service.spec.from_code.vocabulary import POSITIONAL
from service.spec.from_notebook import parse_notebook
from service.spec.notebook import FLATTEN, Spec
from tests import factories
from tests.factories import IMAGE
from tests.helpers import unsaved_experiment

CHAPTER_CELL = """\
import tensorflow as tf
from tensorflow import keras

n_hidden = 300
model = keras.models.Sequential([
    keras.layers.Flatten(input_shape=[28, 28]),
    keras.layers.Dense(n_hidden, kernel_initializer="he_normal", name="hidden1"),
    keras.layers.LeakyReLU(),
    keras.layers.Dense(100, kernel_initializer="he_normal"),
    keras.layers.LeakyReLU(),
    keras.layers.Dense(10, activation="softmax")
])
model.summary()
model.compile(loss="sparse_categorical_crossentropy",
              optimizer=keras.optimizers.SGD(learning_rate=1e-3),
              metrics=["accuracy"])
history = model.fit(X_train, y_train, epochs=10,
                    validation_data=(X_valid, y_valid))
pd.DataFrame(history.history).plot(figsize=(8, 5))
plt.show()
model.evaluate(X_test, y_test)
"""
SPECS: list[Spec] = [
    factories.leaky_relu_spec(),
    factories.batchnorm_spec(),
    factories.dropout_spec(fit={"early_stopping": {"monitor": "val_accuracy", "patience": 2}}),
    factories.conv_spec(fit={"validation_size": 0, "train_size": 1000}),
    *(
        factories.tiny_spec() | {"name": optimizer["type"], "compile": {"optimizer": optimizer}}
        for optimizer in factories.EVERY_OPTIMIZER_ARGUMENT
    ),
    *(
        factories.tiny_spec()
        | {"name": "schedule", "compile": {"optimizer": {"type": "SGD", "learning_rate": s}}}
        for s in factories.EVERY_SCHEDULE
    ),
    factories.tiny_spec(
        validation_size=0,
        validation_split=0.2,
        reduce_lr_on_plateau={"factor": 0.5, "patience": 1},
        early_stopping={"patience": 2},
    )
    | {
        "name": "newer",
        "layers": [
            IMAGE,
            {
                "type": "Conv2D",
                "filters": 4,
                "kernel_size": [3, 3],
                "strides": 2,
                "padding": "same",
                "kernel_regularizer": {"type": "l1_l2", "l1": 0.001, "l2": 0.01},
                "kernel_constraint": {"type": "max_norm", "max_value": 3.0, "axis": [0, 1, 2]},
            },
            {"type": "PReLU", "shared_axes": [1, 2]},
            {"type": "MaxPooling2D", "pool_size": 2},
            FLATTEN,
            {"type": "AlphaDropout", "rate": 0.1},
            {"type": "Dense", "units": 30, "kernel_regularizer": {"type": "l2"}},
            {"type": "ELU", "alpha": 0.5},
            {"type": "Dense", "units": 20, "use_bias": False},
            {"type": "ReLU", "max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5},
            {"type": "Dense", "units": 10},
            {"type": "Activation", "activation": "softmax"},
        ],
    },
]


def _spec_of(code: str) -> dict[str, Any]:
    reading = read_code(code)
    assert len(reading.models) == 1
    return ExperimentSpec.model_validate(reading.models[0].spec()).model_dump(mode="json")


def _normalised(body: Spec) -> dict[str, Any]:
    return normalised_spec(ExperimentCreate.model_validate(body).draft().spec)


def test_the_chapters_cell_reads_as_the_leaky_relu_net() -> None:
    reading = read_code(CHAPTER_CELL)
    expected = factories.leaky_relu_spec()
    spec = ExperimentSpec.model_validate(reading.models[0].spec())
    assert normalised_spec(spec) == _normalised(expected)
    skipped = {item.code: item.why for item in reading.skipped}
    assert skipped['name="hidden1"'] == "Dense's name: the service names layers itself"
    assert "model.summary()" in skipped
    assert "model.evaluate(X_test, y_test)" in skipped
    assert "pd.DataFrame(history.history).plot(figsize=(8, 5))" in skipped
    assert "plt.show()" in skipped


@pytest.mark.parametrize("body", SPECS, ids=lambda body: str(body["name"]))
def test_an_exported_notebook_reads_back_as_its_spec(body: Spec) -> None:
    document = notebook.notebook(unsaved_experiment(body))
    parsed = parse_notebook(document, name="export")
    reading = read_cells((cell.number, cell.source) for cell in parsed.code_cells)
    assert len(reading.models) == 1
    spec = ExperimentSpec.model_validate(reading.models[0].spec())
    assert normalised_spec(spec) == _normalised(body)


def test_an_exported_script_reads_back_as_its_spec() -> None:
    body = factories.tiny_spec() | {"name": "script"}
    assert _spec_of(notebook.script(unsaved_experiment(body))) == _normalised(body)


def test_the_exporter_writes_positionally_only_what_keras_takes_positionally() -> None:
    for spec_type, call in KERAS_CALLS.items():
        keras_name = call.path.rsplit(".", 1)[-1]
        order = POSITIONAL.get(spec_type, POSITIONAL.get(keras_name, ()))
        assert order[: len(call.positional)] == call.positional, spec_type


@pytest.mark.parametrize(
    "imports",
    [
        "import keras\nfrom keras import layers\n",
        "from tensorflow import keras\nfrom tensorflow.keras import layers\n",
        "import tensorflow as tf\nfrom tensorflow.keras import layers\n",
        "from keras import layers\n",
        "",
    ],
)
def test_the_usual_spellings(imports: str) -> None:
    spec = _spec_of(
        imports + "from keras.layers import Dense\n"
        "model = tf.keras.Sequential()\n"
        "model.add(layers.Flatten())\n"
        "model.add(Dense(10, 'softmax'))\n"
        "model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')\n"
    )
    assert [layer["type"] for layer in spec["layers"]] == ["Flatten", "Dense"]
    assert spec["layers"][1]["activation"] == "softmax"
    assert spec["compile"]["optimizer"]["type"] == "Adam"


def test_names_assigned_literals_objects_and_callbacks_are_read() -> None:
    spec = _spec_of(
        "rate = 1e-3\n"
        "n_hidden = 300\n"
        "optimizer = keras.optimizers.SGD(learning_rate=rate * 2, momentum=0.9)\n"
        "stop = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True, verbose=1)\n"
        "hidden = keras.layers.Dense(n_hidden, activation=keras.activations.elu,\n"
        "    kernel_initializer=keras.initializers.HeNormal(),\n"
        "    kernel_regularizer=keras.regularizers.l2(0.01))\n"
        "keras.utils.set_random_seed(7)\n"
        "model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten()])\n"
        "model.add(hidden)\n"
        "model.add(keras.layers.Dense(10, activation=tf.nn.softmax))\n"
        "model.compile(loss=keras.losses.SparseCategoricalCrossentropy(), optimizer=optimizer,\n"
        "              metrics=['accuracy'])\n"
        "model.fit(X_train[:1000], y_train[:1000], epochs=2, batch_size=16,\n"
        "          validation_split=0.1, callbacks=[stop, keras.callbacks.TensorBoard('logs')])\n"
    )
    assert spec["layers"][0] == {"type": "Flatten"}
    dense = spec["layers"][1]
    assert (dense["units"], dense["activation"], dense["kernel_initializer"]) == (
        300,
        "elu",
        "he_normal",
    )
    assert dense["kernel_regularizer"] == {"type": "l2", "l2": 0.01}
    optimizer = spec["compile"]["optimizer"]
    assert (optimizer["type"], optimizer["learning_rate"], optimizer["momentum"]) == (
        "SGD",
        0.002,
        0.9,
    )
    fit = spec["fit"]
    assert (fit["epochs"], fit["batch_size"], fit["train_size"], fit["seed"]) == (2, 16, 1000, 7)
    assert (fit["validation_split"], fit["validation_size"]) == (0.1, 0)
    assert fit["early_stopping"]["patience"] == 5
    assert fit["early_stopping"]["restore_best_weights"] is True


def test_the_notebooks_split_gives_the_validation_size() -> None:
    spec = _spec_of(
        "X_valid, X_train = X_train_full[:2000] / 255., X_train_full[2000:] / 255.\n"
        "model = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(10, 'softmax')])\n"
        "model.compile(optimizer='sgd')\n"
        "model.fit(X_train, y_train, epochs=1, validation_data=(X_valid, y_valid))\n"
    )
    assert spec["fit"]["validation_size"] == 2000


def test_cells_share_names_and_ipython_magics_are_skipped() -> None:
    reading = read_cells(
        [
            (1, "%matplotlib inline\n!pip install keras\nfrom tensorflow import keras\n"),
            (2, "model = keras.Sequential([keras.layers.Flatten()])\n"),
            (3, "model.add(keras.layers.Dense(10, activation='softmax'))\nmodel.compile('adam')\n"),
            (4, "model.fit(x, y, epochs=3)\n"),
        ]
    )
    (model,) = reading.models
    assert model.where.cell == 2
    assert model.fit == {"epochs": 3, "validation_size": 0}
    assert [item.code for item in reading.skipped[:2]] == [
        "%matplotlib inline",
        "!pip install keras",
    ]


# Each construct the spec cannot hold: (code, line, column, words the message holds).
REFUSED = [
    (
        "class MyDense(keras.layers.Layer):\n    pass\n"
        "model = keras.Sequential([keras.layers.Flatten(), MyDense(10)])\n",
        3,
        51,
        "is not a Keras layer (defined at line 1, column 1)",
    ),
    (
        "model = keras.Sequential([keras.layers.Flatten(),\n"
        "    keras.layers.Dense(10, activation=lambda x: x)])\n",
        2,
        39,
        "a lambda is code",
    ),
    (
        "units = int(input())\nmodel = keras.Sequential([keras.layers.Dense(units)])\n",
        1,
        9,
        "computed at run time",
    ),
    (
        "units = np.random.randint(10)\nmodel = keras.Sequential([keras.layers.Dense(units)])\n",
        1,
        9,
        "computed at run time",
    ),
    (
        "model = keras.Sequential()\nfor _ in range(3):\n    model.add(keras.layers.Dense(10))\n",
        3,
        5,
        "a loop or a branch cannot build it",
    ),
    (
        "model = keras.Sequential([keras.layers.Flatten(), keras.layers.Lambda(f)])\n",
        1,
        51,
        "the service does not build 'Lambda' layers",
    ),
    (
        "inputs = keras.Input(shape=[28, 28])\nmodel = keras.Model(inputs, outputs)\n",
        2,
        9,
        "the service trains Sequential models",
    ),
    (
        "model = keras.Sequential([keras.layers.Flatten()])\nmodel.fit(x, y)\n",
        2,
        1,
        "fit before compile",
    ),
    (
        "model = keras.Sequential([keras.layers.Flatten()])\nmodel.compile('adam')\n"
        "model.fit(x, y, class_weight={0: 2.0})\n",
        3,
        30,
        "fit's 'class_weight' is not something the service sets",
    ),
    (
        "model = keras.Sequential([keras.layers.Flatten()])\nmodel.compile('adam')\n"
        "model.fit(x, y, callbacks=[MyCallback()])\n",
        3,
        28,
        "not a callback the service runs",
    ),
    ("model = keras.Sequential([\n", 1, 26, "was never closed"),
    ("x = 10 ** 10 ** 10\nmodel = keras.Sequential([keras.layers.Dense(x)])\n", 1, 5, ""),
    (
        "x = 999999 ** 999\nmodel = keras.Sequential([keras.layers.Dense(x)])\n",
        1,
        5,
        "cannot be worked out here",
    ),
    (f"model = keras.Sequential([keras.layers.Dense({10**20})])\n", 1, 46, "is no setting"),
]


@pytest.mark.parametrize(("code", "line", "column", "words"), REFUSED)
def test_what_cannot_be_mapped_is_refused_with_line_and_column(
    code: str, line: int, column: int, words: str
) -> None:
    with pytest.raises(CodeRefused) as refused:
        read_code(code)
    assert (refused.value.where.line, refused.value.where.column) == (line, column), str(
        refused.value
    )
    assert words in refused.value.reason


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("__import__('os').system('touch {marker}')", "'__import__' runs code"),
        ("import os\nos.system('touch {marker}')", "os.system() reaches the system"),
        ("import subprocess\nsubprocess.run(['touch', '{marker}'])", "importing 'subprocess'"),
        (
            "().__class__.__bases__[0].__subclasses__()",
            "the attribute '__subclasses__' reaches Python's internals",
        ),
        ("eval(\"open('{marker}', 'w')\")", "'eval' runs code"),
        (
            "model = keras.Sequential([keras.layers.Dense(getattr(x, 'y'))])",
            "'getattr' runs code",
        ),
    ],
)
def test_code_that_tries_to_run_code_is_refused_and_nothing_runs(
    code: str, words: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(CodeRefused) as refused:
        read_code(code.format(marker=marker))
    assert words in refused.value.reason
    assert "never runs it" in refused.value.reason
    assert not marker.exists()


def test_a_notebook_names_its_cells_and_headings() -> None:
    document = {
        "nbformat": 4,
        "cells": [
            {"cell_type": "markdown", "source": ["# Chapter 11\n", "## Leaky ReLU\n", "text"]},
            {"cell_type": "code", "source": "model = keras.Sequential()"},
        ],
    }
    parsed = parse_notebook(json.dumps(document), name="chapter")
    assert parsed.heading_before(2) == "Leaky ReLU"
    assert parsed.heading_before(1) is None
