"""POST /experiments with Keras as the notebook writes it, and with the rest of the chapter's
tools: accepted where Keras accepts it, else a 422 in words a person would write."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import FLATTEN, IMAGE, SOFTMAX_10, Spec, tiny_spec

Change = Callable[[Spec], None]

# What pydantic would have said on its own; none of it may reach a learner.
PYDANTIC_WORDING = ("Value error", "Input tag", "Extra inputs are not permitted", "match pattern")


def _changed(change: Change) -> Spec:
    spec = copy.deepcopy(tiny_spec())
    change(spec)
    return spec


def _layers(*layers: Spec) -> Change:
    def change(spec: Spec) -> None:
        spec["layers"] = list(layers)

    return change


def _optimizer(optimizer: Spec | str) -> Change:
    def change(spec: Spec) -> None:
        spec["compile"]["optimizer"] = optimizer

    return change


def _fit(**arguments: Any) -> Change:
    def change(spec: Spec) -> None:
        spec["fit"].update(arguments)

    return change


def _dense(**arguments: Any) -> Spec:
    return {"type": "Dense", "units": 32, **arguments}


def _with_dense(**arguments: Any) -> Change:
    return _layers(FLATTEN, _dense(**arguments), SOFTMAX_10)


EXPONENTIAL = {
    "type": "ExponentialDecay",
    "initial_learning_rate": 0.01,
    "decay_steps": 10,
    "decay_rate": 0.5,
}

ACCEPTED = [
    pytest.param(_layers({"type": "Flatten", "input_shape": [28, 28]}, SOFTMAX_10), id="shape"),
    pytest.param(_layers({"type": "Input", "shape": [28, 28]}, FLATTEN, SOFTMAX_10), id="Input"),
    pytest.param(_fit(validation_split=0.1, validation_size=None), id="validation-split"),
    pytest.param(_optimizer({"type": "SGD", "learning_rate": EXPONENTIAL}), id="schedule"),
    pytest.param(_optimizer({"type": "Adam", "global_clipnorm": 1.0}), id="clipping"),
    pytest.param(_with_dense(kernel_regularizer="l2", kernel_constraint="max_norm"), id="by-name"),
]


@pytest.mark.parametrize("change", ACCEPTED)
def test_notebook_and_chapter_keras_is_accepted(client: TestClient, change: Change) -> None:
    spec = _changed(change)
    spec["fit"] = {key: value for key, value in spec["fit"].items() if value is not None}

    response = client.post("/experiments", json=spec)

    assert response.status_code == 202, response.text


def test_input_shape_and_input_layer_keep_the_summary(client: TestClient) -> None:
    plain = client.post("/experiments", json=tiny_spec()).json()
    notebook = _changed(_layers({"type": "Flatten", "input_shape": [28, 28]}, SOFTMAX_10))
    with_input = _changed(_layers({"type": "Input", "shape": [28, 28]}, FLATTEN, SOFTMAX_10))

    for spec in (notebook, with_input):
        assert client.post("/experiments", json=spec).json()["summary"] == plain["summary"]


def test_validation_split_alone_holds_out_nothing_first(client: TestClient) -> None:
    spec = _changed(_fit(validation_split=0.2))
    del spec["fit"]["validation_size"]

    fit = client.post("/experiments", json=spec).json()["spec"]["fit"]

    assert (fit["validation_split"], fit["validation_size"]) == (0.2, 0)


REFUSED = [
    # (change, what the message must say)
    pytest.param(_optimizer({"type": "SGD", "lr": 0.01}), ["'learning_rate'", "Keras 3"], id="lr"),
    pytest.param(_optimizer({"type": "SGD", "decay": 1e-4}), ["InverseTimeDecay"], id="decay"),
    pytest.param(_layers({"type": "dense", "units": 10}), ["did you mean 'Dense'"], id="dense"),
    pytest.param(_layers({"type": "Dens", "units": 10}), ["did you mean 'Dense'"], id="Dens"),
    pytest.param(_layers({"type": "Transformer"}), ["choose one of", "'Flatten'"], id="no-match"),
    pytest.param(_layers({"units": 10}), ['"type"', "'Dense'"], id="no-type"),
    pytest.param(_with_dense(unit=3), ["did you mean 'units'"], id="argument"),
    pytest.param(_with_dense(output_dim=3), ["'units'", "Keras 3"], id="keras-1-name"),
    pytest.param(_with_dense(activation="Relu"), ["did you mean 'relu'"], id="activation"),
    pytest.param(_with_dense(kernel_initializer="He_Normal"), ["'he_normal'"], id="initializer"),
    pytest.param(_optimizer({"type": "adam"}), ["did you mean 'Adam'"], id="optimizer-type"),
    pytest.param(_optimizer("adadelta"), ["choose one of", "'SGD'"], id="optimizer-name"),
    pytest.param(_optimizer({"type": "Adam", "beta1": 0.9}), ["'beta_1'"], id="optimizer-arg"),
    pytest.param(_fit(nb_epoch=3), ["'epochs'"], id="nb-epoch"),
    pytest.param(_fit(validaton_split=0.1), ["did you mean 'validation_split'"], id="fit-arg"),
    pytest.param(_with_dense(units="300"), ["without quotes"], id="units-string"),
    pytest.param(_with_dense(units=True), ["whole number", "not true"], id="units-bool"),
    pytest.param(_with_dense(use_bias="true"), ["true or false"], id="bool-string"),
    pytest.param(
        _optimizer({"type": "Adam", "learning_rate": "0.001"}), ["without quotes"], id="lr-string"
    ),
    pytest.param(_layers(_dense(), SOFTMAX_10), ['add {"type": "Flatten"}'], id="no-flatten"),
    pytest.param(_layers(SOFTMAX_10), ['{"type": "Flatten"}', "(28, 10)"], id="softmax-on-rows"),
    pytest.param(
        _layers({"type": "Flatten", "input_shape": [784]}, SOFTMAX_10),
        ["28x28", "[28, 28]"],
        id="input-shape-784",
    ),
    pytest.param(
        _layers({"type": "Input", "shape": [28, 28, 1]}, FLATTEN, SOFTMAX_10),
        ["28x28", "Reshape"],
        id="input-28-28-1",
    ),
    pytest.param(
        _layers(FLATTEN, {"type": "Input", "shape": [28, 28]}, SOFTMAX_10),
        ["only be the first layer"],
        id="input-later",
    ),
    pytest.param(
        _layers(FLATTEN, _dense(input_shape=[28, 28]), SOFTMAX_10),
        ["only means something on the first layer"],
        id="input-shape-later",
    ),
    pytest.param(_fit(validation_split=0.1), ["not both", "pick one"], id="two-splits"),
    pytest.param(_fit(validation_split=1.0, validation_size=0), ["less than 1"], id="split-1"),
    pytest.param(
        _optimizer({"type": "SGD", "clipnorm": 1.0, "clipvalue": 0.5}),
        ["clipnorm and clipvalue", "Keras refuses"],
        id="two-clippings",
    ),
    pytest.param(_optimizer({"type": "SGD", "clipnorm": 0}), ["greater than 0"], id="clip-zero"),
    pytest.param(
        _optimizer(
            {
                "type": "SGD",
                "learning_rate": {
                    "type": "PiecewiseConstantDecay",
                    "boundaries": [100, 200],
                    "values": [0.1, 0.01],
                },
            }
        ),
        ["one more value than boundaries"],
        id="piecewise-values",
    ),
    pytest.param(
        _optimizer({"type": "SGD", "learning_rate": {**EXPONENTIAL, "decay_steps": 0}}),
        ["greater than or equal to 1"],
        id="decay-steps-zero",
    ),
    pytest.param(
        _optimizer({"type": "SGD", "learning_rate": {**EXPONENTIAL, "type": "ExpDecay"}}),
        ["did you mean 'ExponentialDecay'"],
        id="schedule-type",
    ),
    pytest.param(
        _optimizer({"type": "SGD", "learning_rate": {"type": "CosineDecay", "alpha": 2}}),
        ["initial_learning_rate", "is required"],
        id="schedule-missing",
    ),
    pytest.param(_fit(reduce_lr_on_plateau={"factor": 1.0}), ["less than 1"], id="plateau-factor"),
    pytest.param(
        _fit(reduce_lr_on_plateau={"monitor": "val_acc"}),
        ["did you mean 'val_accuracy'"],
        id="plateau-monitor",
    ),
    pytest.param(
        lambda spec: (
            _optimizer({"type": "SGD", "learning_rate": EXPONENTIAL})(spec),
            _fit(reduce_lr_on_plateau={})(spec),
        ),
        ["ExponentialDecay schedule", "Keras refuses both"],
        id="plateau-and-schedule",
    ),
    pytest.param(
        _fit(validation_size=0, reduce_lr_on_plateau={}),
        ["reduce_lr_on_plateau monitors 'val_loss'"],
        id="plateau-without-validation",
    ),
    pytest.param(_with_dense(kernel_regularizer="l3"), ["'l1'", "'l2'"], id="regularizer-name"),
    pytest.param(
        _with_dense(kernel_regularizer={"type": "l2", "l2": -1}),
        ["greater than or equal to 0"],
        id="regularizer-negative",
    ),
    pytest.param(
        _with_dense(kernel_regularizer={"type": "l2", "l1": 0.1}),
        ["has no argument 'l1'"],
        id="regularizer-argument",
    ),
    pytest.param(
        _with_dense(kernel_constraint={"type": "max_norm", "max_value": 0}),
        ["greater than 0"],
        id="max-norm-zero",
    ),
    pytest.param(
        _with_dense(kernel_constraint={"type": "maxnorm"}),
        ["did you mean 'max_norm'"],
        id="constraint-name",
    ),
    pytest.param(
        _layers(FLATTEN, {"type": "PReLU", "shared_axes": [2]}, SOFTMAX_10),
        ["shared_axes [2]", "(784,)"],
        id="prelu-axes",
    ),
    pytest.param(
        _layers(IMAGE, {"type": "PReLU", "alpha_initializer": "one"}, FLATTEN, SOFTMAX_10),
        ["did you mean 'ones'"],
        id="prelu-initializer",
    ),
    pytest.param(
        _layers(FLATTEN, {"type": "ELU", "alpha": -1}, SOFTMAX_10),
        ["greater than or equal to 0"],
        id="elu-alpha",
    ),
    pytest.param(
        _layers(FLATTEN, {"type": "ReLU", "max_value": -1}, SOFTMAX_10),
        ["greater than or equal to 0"],
        id="relu-max-value",
    ),
    pytest.param(
        _layers(FLATTEN, {"type": "AlphaDropout", "rate": 1.0}, SOFTMAX_10),
        ["less than 1"],
        id="alpha-dropout-rate",
    ),
    pytest.param(lambda spec: spec.update(name="  "), ["name"], id="blank-name"),
]


@pytest.mark.parametrize(("change", "phrases"), REFUSED)
def test_bad_spec_is_a_422_a_person_can_act_on(
    client: TestClient, change: Change, phrases: list[str]
) -> None:
    response = client.post("/experiments", json=_changed(change))

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["details"], body
    for phrase in phrases:
        assert phrase in body["detail"], body["detail"]
    messages = [body["detail"], *(item["msg"] for item in body["details"])]
    for wording in PYDANTIC_WORDING:
        assert not [message for message in messages if wording in message], messages
