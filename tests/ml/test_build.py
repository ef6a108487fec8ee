"""Specs built into real Keras models: the summary, its layer names, the promised counts."""

from __future__ import annotations

from typing import Any

import keras
import pytest
from pydantic import ValidationError

from service.ml import build
from service.ml.build import build_model, dry_run, make_optimizer
from service.schemas.experiments import ExperimentCreate
from service.spec.architecture import infer_architecture
from service.spec.regularizers import KERAS_CONSTRAINT_NAMES, KERAS_REGULARIZER_NAMES
from tests.factories import (
    EVERY_OPTIMIZER_ARGUMENT,
    FLATTEN,
    IMAGE,
    NOTEBOOK_NETS,
    SOFTMAX_10,
    Spec,
    batchnorm_spec,
    conv_spec,
    dropout_spec,
    leaky_relu_spec,
    tiny_spec,
)


def _spec(data: Spec) -> ExperimentCreate:
    return ExperimentCreate.model_validate(data)


@pytest.mark.parametrize("net", NOTEBOOK_NETS)
def test_notebook_nets_have_the_notebook_parameter_counts(net: str) -> None:
    factory, counts = NOTEBOOK_NETS[net]

    summary = dry_run(_spec(factory()))

    assert (
        summary["total_params"],
        summary["trainable_params"],
        summary["non_trainable_params"],
    ) == counts


def test_summary_lists_each_layer_as_keras_does() -> None:
    summary = dry_run(_spec(leaky_relu_spec()))

    assert summary["layers"] == [
        {"name": "flatten", "type": "Flatten", "output_shape": [None, 784], "params": 0},
        {"name": "dense", "type": "Dense", "output_shape": [None, 300], "params": 235_500},
        {"name": "leaky_re_lu", "type": "LeakyReLU", "output_shape": [None, 300], "params": 0},
        {"name": "dense_1", "type": "Dense", "output_shape": [None, 100], "params": 30_100},
        {"name": "leaky_re_lu_1", "type": "LeakyReLU", "output_shape": [None, 100], "params": 0},
        {"name": "dense_2", "type": "Dense", "output_shape": [None, 10], "params": 1_010},
    ]


@pytest.mark.parametrize(
    ("factory", "names"),
    [
        (
            batchnorm_spec,
            [
                "flatten",
                "batch_normalization",
                "dense",
                "batch_normalization_1",
                "dense_1",
                "batch_normalization_2",
                "dense_2",
            ],
        ),
        (
            dropout_spec,
            ["flatten", "dropout", "dense", "dropout_1", "dense_1", "dropout_2", "dense_2"],
        ),
        (conv_spec, ["reshape", "conv2d", "max_pooling2d", "flatten", "dense"]),
    ],
)
def test_layer_names_are_keras_names(factory: Any, names: list[str]) -> None:
    summary = dry_run(_spec(factory()))

    assert [layer["name"] for layer in summary["layers"]] == names


def test_building_the_same_spec_twice_gives_the_same_names() -> None:
    spec = _spec(batchnorm_spec())

    first, second = build_model(spec), build_model(spec)

    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]
    assert dry_run(spec) == dry_run(spec)


def test_a_net_built_before_is_summarised_without_building_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A class submits the same net over and over: its summary is kept, by its layers."""
    spec = _spec(leaky_relu_spec(fit={"epochs": 3}))
    first = dry_run(spec)
    builds = []
    monkeypatch.setattr(build, "build_model", lambda *args: builds.append(args))

    again = dry_run(_spec(leaky_relu_spec(fit={"epochs": 7}, name="another")))

    assert again == first
    assert builds == []  # same layers, other fit and name: nothing built
    again["layers"].clear()  # a caller's copy: changing it changes nothing kept
    assert dry_run(spec) == first


def _net(*layers: Spec) -> Spec:
    return {**tiny_spec(), "layers": list(layers)}


AGREEMENT_NETS = [
    pytest.param(leaky_relu_spec(), id="leaky-relu"),
    pytest.param(batchnorm_spec(), id="batchnorm"),
    pytest.param(dropout_spec(), id="dropout"),
    pytest.param(conv_spec(), id="conv"),
    pytest.param(
        _net(
            IMAGE,
            {"type": "Conv2D", "filters": 16, "kernel_size": 5, "strides": 2, "padding": "same"},
            {"type": "BatchNormalization"},
            {"type": "Activation", "activation": "relu"},
            {"type": "Conv2D", "filters": 8, "kernel_size": [3, 2], "strides": [2, 1]},
            {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
            FLATTEN,
            {"type": "Dropout", "rate": 0.3},
            SOFTMAX_10,
        ),
        id="conv-same-stride-2-batchnorm",
    ),
    pytest.param(
        _net(
            {"type": "Reshape", "target_shape": [7, 112]},
            {"type": "Dense", "units": 16, "use_bias": False},
            {"type": "BatchNormalization", "momentum": 0.9},
            {"type": "Reshape", "target_shape": [7, 16, 1]},
            {"type": "Conv2D", "filters": 4, "kernel_size": 2, "use_bias": False},
            {"type": "MaxPooling2D", "pool_size": [2, 3], "padding": "valid"},
            FLATTEN,
            {"type": "Dense", "units": 10},
            {"type": "Activation", "activation": "softmax"},
        ),
        id="dense-on-rows-no-bias",
    ),
    pytest.param(
        _net(
            {"type": "BatchNormalization"},
            {"type": "Dense", "units": 32, "activation": "tanh"},
            FLATTEN,
            SOFTMAX_10,
        ),
        id="batchnorm-and-dense-before-flatten",
    ),
    pytest.param(
        _net(
            {"type": "Input", "shape": [28, 28]},
            {"type": "Reshape", "target_shape": [28, 28, 1]},
            {
                "type": "Conv2D",
                "filters": 4,
                "kernel_size": 3,
                "kernel_regularizer": {"type": "l2", "l2": 0.001},
                "kernel_constraint": {"type": "max_norm", "max_value": 2.0, "axis": [0, 1, 2]},
            },
            {"type": "PReLU", "shared_axes": [1, 2]},
            FLATTEN,
            {"type": "Dense", "units": 32, "kernel_regularizer": "l1"},
            {"type": "PReLU"},
            {"type": "ELU", "alpha": 0.5},
            {"type": "ReLU", "max_value": 6.0},
            {"type": "AlphaDropout", "rate": 0.1},
            SOFTMAX_10,
        ),
        id="chapter-layers-input-first",
    ),
    pytest.param(
        _net(
            {"type": "Flatten", "input_shape": [28, 28]},
            {
                "type": "Dense",
                "units": 20,
                "activation": "selu",
                "kernel_initializer": "lecun_normal",
            },
            {"type": "PReLU", "alpha_initializer": "ones"},
            SOFTMAX_10,
        ),
        id="notebook-input-shape-selu",
    ),
]


@pytest.mark.parametrize("data", AGREEMENT_NETS)
def test_pure_python_inference_agrees_with_keras(data: Spec) -> None:
    spec = _spec(data)
    inferred = infer_architecture(spec.layers)

    summary = dry_run(spec)

    assert [layer["output_shape"][1:] for layer in summary["layers"]] == [
        list(layer.output_shape) for layer in inferred
    ]
    assert [layer["params"] for layer in summary["layers"]] == [layer.params for layer in inferred]
    assert spec.parameter_count == summary["total_params"]
    assert sum(layer.trainable_params for layer in inferred) == summary["trainable_params"]


def test_input_layer_and_input_shape_change_no_summary() -> None:
    plain = dry_run(_spec(_net(FLATTEN, SOFTMAX_10)))
    with_input = dry_run(_spec(_net({"type": "Input", "shape": [28, 28]}, FLATTEN, SOFTMAX_10)))
    with_shape = dry_run(_spec(_net({"type": "Flatten", "input_shape": [28, 28]}, SOFTMAX_10)))

    assert plain == with_input == with_shape


@pytest.mark.parametrize(
    "schedule",
    [
        {
            "type": "ExponentialDecay",
            "initial_learning_rate": 0.01,
            "decay_steps": 100,
            "decay_rate": 0.5,
            "staircase": True,
        },
        {
            "type": "InverseTimeDecay",
            "initial_learning_rate": 0.01,
            "decay_steps": 1,
            "decay_rate": 1e-4,
            "staircase": False,
        },
        {
            "type": "CosineDecay",
            "initial_learning_rate": 0.01,
            "decay_steps": 1000,
            "alpha": 0.1,
            "warmup_target": 0.02,
            "warmup_steps": 10,
        },
        {"type": "PiecewiseConstantDecay", "boundaries": [100, 200], "values": [0.1, 0.01, 0.001]},
    ],
    ids=lambda schedule: schedule["type"],
)
def test_optimizer_is_built_with_a_schedule(schedule: Spec) -> None:
    data = tiny_spec()
    data["compile"]["optimizer"] = {"type": "SGD", "learning_rate": schedule, "clipnorm": 1.0}

    built = make_optimizer(_spec(data).compile.optimizer)

    rate = built.get_config()["learning_rate"]
    assert rate["class_name"] == schedule["type"]
    for name, value in schedule.items():
        if name != "type":
            assert rate["config"][name] == pytest.approx(value), name
    assert built.get_config()["clipnorm"] == 1.0


@pytest.mark.parametrize("optimizer", EVERY_OPTIMIZER_ARGUMENT, ids=lambda o: o["type"])
def test_optimizer_is_built_with_every_argument(optimizer: Spec) -> None:
    data = tiny_spec()
    data["compile"]["optimizer"] = optimizer

    built = make_optimizer(_spec(data).compile.optimizer)

    config = built.get_config()
    assert type(built).__name__ == optimizer["type"]
    for argument, value in optimizer.items():
        if argument != "type":
            assert config[argument] == pytest.approx(value, rel=1e-6), argument


@pytest.mark.parametrize(
    ("names", "get", "service_classes"),
    [
        (
            KERAS_REGULARIZER_NAMES,
            keras.regularizers.get,
            {
                "l1": keras.regularizers.L1,
                "l2": keras.regularizers.L2,
                "l1_l2": keras.regularizers.L1L2,
            },
        ),
        (
            KERAS_CONSTRAINT_NAMES,
            keras.constraints.get,
            {
                "max_norm": keras.constraints.MaxNorm,
                "non_neg": keras.constraints.NonNeg,
                "unit_norm": keras.constraints.UnitNorm,
            },
        ),
    ],
    ids=["regularizers", "constraints"],
)
def test_bare_names_are_exactly_the_ones_the_installed_keras_takes(
    names: dict[str, str], get: Any, service_classes: dict[str, type]
) -> None:
    """Every spelling Keras's `get` resolves to a class the spec has, and no other."""
    candidates = set(names) | {
        spelling
        for cls in service_classes.values()
        for spelling in (cls.__name__, cls.__name__.lower(), "l1_l2", "max-norm", "maxnorm")
    }
    taken = {}
    for name in candidates:
        try:
            taken[name] = type(get(name))
        except ValueError:
            continue
    assert taken == {name: service_classes[kind] for name, kind in names.items()}


@pytest.mark.parametrize("name", ["l1l2", "L1L2", "L2", "l1"])
def test_a_keras_regularizer_name_builds_the_regularizer_keras_would(name: str) -> None:
    spec = tiny_spec()
    spec["layers"][1]["kernel_regularizer"] = name
    built = build_model(_spec(spec)).layers[1].kernel_regularizer

    expected = keras.regularizers.get(name)
    assert type(built) is type(expected)
    assert built.get_config() == expected.get_config()


def test_a_regularizer_name_keras_does_not_know_is_refused_with_keras_names() -> None:
    spec = tiny_spec()
    spec["layers"][1]["kernel_regularizer"] = "l1_l2"
    with pytest.raises(ValidationError) as refused:
        _spec(spec)
    message = str(refused.value)
    assert "unknown regularizer 'l1_l2'; did you mean 'l1l2'?" in message
    assert "'l1', 'L1', 'l2', 'L2', 'l1l2', 'L1L2'" in message
