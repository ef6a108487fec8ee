"""The experiment request schema, validated directly: what it accepts, and what each error names."""

from __future__ import annotations

import math
from typing import Any

import keras
import pytest
from pydantic import ValidationError

from service.ml.build import dry_run
from service.schemas.experiments import ExperimentCreate
from service.spec.architecture import infer_architecture
from service.spec.layers import (
    ACTIVATIONS,
    INITIALIZERS,
    LAYER_TYPES,
    BatchNormalization,
    Conv2D,
    Dense,
    LeakyReLU,
    MaxPooling2D,
)
from service.spec.optimizers import (
    CLIPPING,
    OPTIMIZER_TYPES,
    SGD,
    Adagrad,
    Adam,
    Adamax,
    Nadam,
    RMSprop,
)
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


def _with_layers(*layers: Spec) -> Spec:
    return {**tiny_spec(), "layers": list(layers)}


def _with_optimizer(optimizer: Spec | str) -> Spec:
    spec = tiny_spec()
    spec["compile"]["optimizer"] = optimizer
    return spec


def _errors(data: Spec) -> list[Any]:
    with pytest.raises(ValidationError) as caught:
        ExperimentCreate.model_validate(data)
    return caught.value.errors()


def _around(layer: Spec) -> tuple[list[Spec], int]:
    """A valid net containing `layer`, and the layer's index in it."""
    if layer["type"] in {"Conv2D", "MaxPooling2D"}:
        return [IMAGE, layer, FLATTEN, SOFTMAX_10], 1
    if layer["type"] in {"Reshape", "Input"}:
        return [layer, FLATTEN, SOFTMAX_10], 0
    return [FLATTEN, layer, SOFTMAX_10], 1


# --- accepted -------------------------------------------------------------------------------

# Every argument of every layer, none at its default: what goes in must come out unchanged.
EVERY_ARGUMENT = [
    {"type": "Input", "shape": [28, 28]},
    {"type": "Flatten"},
    {
        "type": "Dense",
        "units": 300,
        "activation": "relu",
        "kernel_initializer": "he_normal",
        "use_bias": False,
        "kernel_regularizer": {"type": "l1_l2", "l1": 0.001, "l2": 0.01},
        "kernel_constraint": {"type": "max_norm", "max_value": 3.0, "axis": 0},
    },
    {"type": "Activation", "activation": "tanh"},
    {"type": "LeakyReLU", "negative_slope": 0.2},
    {"type": "PReLU", "alpha_initializer": "ones", "shared_axes": [1]},
    {"type": "ELU", "alpha": 0.5},
    {"type": "ReLU", "max_value": 6.0, "negative_slope": 0.1, "threshold": 0.5},
    {"type": "AlphaDropout", "rate": 0.1},
    {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 1e-5},
    {"type": "Dropout", "rate": 0.5},
    {
        "type": "Conv2D",
        "filters": 8,
        "kernel_size": 5,
        "strides": 2,
        "padding": "same",
        "activation": "relu",
        "kernel_initializer": "he_uniform",
        "use_bias": False,
        "kernel_regularizer": {"type": "l2", "l2": 0.001},
        "kernel_constraint": {"type": "unit_norm", "axis": [0, 1, 2]},
    },
    {
        "type": "Conv2D",
        "filters": 4,
        "kernel_size": [3, 5],
        "strides": [1, 2],
        "padding": "valid",
        "activation": None,
        "kernel_initializer": "glorot_normal",
        "use_bias": True,
        "kernel_regularizer": {"type": "l1", "l1": 0.01},
        "kernel_constraint": {"type": "non_neg"},
    },
    {"type": "MaxPooling2D", "pool_size": 3, "strides": None, "padding": "valid"},
    {"type": "MaxPooling2D", "pool_size": [2, 3], "strides": [1, 2], "padding": "same"},
    {"type": "Reshape", "target_shape": [784]},
    {"type": "Reshape", "target_shape": [7, 112]},
    {"type": "Reshape", "target_shape": [28, 28, 1]},
]


def test_every_layer_type_is_covered() -> None:
    assert {layer["type"] for layer in EVERY_ARGUMENT} == set(LAYER_TYPES)


@pytest.mark.parametrize("layer", EVERY_ARGUMENT, ids=lambda layer: layer["type"])
def test_layer_accepted_with_every_argument(layer: Spec) -> None:
    layers, index = _around(layer)

    spec = ExperimentCreate.model_validate(_with_layers(*layers))

    parsed = spec.layers[index]
    arguments = {name for name, field in type(parsed).model_fields.items() if not field.exclude}
    assert set(layer) == arguments, "the case should give every argument"
    assert parsed.model_dump() == layer


@pytest.mark.parametrize("name", ["alpha", "negative_slope"])
def test_leaky_relu_slope_accepts_the_old_alpha_name(name: str) -> None:
    spec = ExperimentCreate.model_validate(
        _with_layers(FLATTEN, {"type": "LeakyReLU", name: 0.1}, SOFTMAX_10)
    )

    assert spec.layers[1] == LeakyReLU(type="LeakyReLU", negative_slope=0.1)
    assert spec.layers[1].model_dump()["negative_slope"] == 0.1


def test_conv_and_pooling_windows_as_int_or_pair() -> None:
    square = Conv2D.model_validate({"type": "Conv2D", "filters": 1, "kernel_size": 3})
    oblong = Conv2D.model_validate(
        {"type": "Conv2D", "filters": 1, "kernel_size": [3, 5], "strides": [2, 1]}
    )
    pooling = MaxPooling2D.model_validate({"type": "MaxPooling2D", "pool_size": [2, 3]})

    assert (square.kernel, square.stride) == ((3, 3), (1, 1))
    assert (oblong.kernel, oblong.stride) == ((3, 5), (2, 1))
    assert (pooling.pool, pooling.stride) == ((2, 3), (2, 3)), "strides None means pool_size"


def test_layer_defaults_are_keras_defaults() -> None:
    dense = Dense.model_validate({"type": "Dense", "units": 4})
    keras_dense = keras.layers.Dense(4)
    leaky = LeakyReLU.model_validate({"type": "LeakyReLU"})
    batchnorm = BatchNormalization.model_validate({"type": "BatchNormalization"})
    conv = Conv2D.model_validate({"type": "Conv2D", "filters": 1, "kernel_size": 3})
    keras_conv = keras.layers.Conv2D(1, 3).get_config()
    pooling = MaxPooling2D.model_validate({"type": "MaxPooling2D"})
    keras_pooling = keras.layers.MaxPooling2D().get_config()

    assert dense.activation is None
    assert keras_dense.get_config()["activation"] == "linear"
    assert type(keras.initializers.get(dense.kernel_initializer)) is type(
        keras_dense.kernel_initializer
    )
    assert dense.use_bias is keras_dense.get_config()["use_bias"]
    assert leaky.negative_slope == keras.layers.LeakyReLU().get_config()["negative_slope"]
    keras_batchnorm = keras.layers.BatchNormalization().get_config()
    assert (batchnorm.momentum, batchnorm.epsilon) == (
        keras_batchnorm["momentum"],
        keras_batchnorm["epsilon"],
    )
    assert (conv.stride, conv.padding) == (keras_conv["strides"], keras_conv["padding"])
    assert (pooling.pool, pooling.stride, pooling.padding) == (
        keras_pooling["pool_size"],
        keras_pooling["strides"],
        keras_pooling["padding"],
    )


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_is_a_keras_activation(name: str) -> None:
    assert callable(keras.activations.get(name))


@pytest.mark.parametrize("name", INITIALIZERS)
def test_every_initializer_is_a_keras_initializer(name: str) -> None:
    assert isinstance(keras.initializers.get(name), keras.initializers.Initializer)


def test_every_optimizer_is_covered() -> None:
    assert [optimizer["type"] for optimizer in EVERY_OPTIMIZER_ARGUMENT] == list(OPTIMIZER_TYPES)


@pytest.mark.parametrize("optimizer", EVERY_OPTIMIZER_ARGUMENT, ids=lambda o: o["type"])
def test_optimizer_accepted_with_every_argument(optimizer: Spec) -> None:
    spec = ExperimentCreate.model_validate(_with_optimizer(optimizer))

    parsed = spec.compile.optimizer
    every = set(optimizer) | set(CLIPPING)  # one clipping argument at a time
    assert every == set(type(parsed).model_fields), "the case should give every argument"
    assert parsed.model_dump(exclude_none=True) == optimizer


@pytest.mark.parametrize("name", OPTIMIZER_TYPES)
def test_optimizer_defaults_are_keras_defaults(name: str) -> None:
    spec = ExperimentCreate.model_validate(_with_optimizer({"type": name}))
    keras_config = getattr(keras.optimizers, name)().get_config()

    arguments = spec.compile.optimizer.model_dump(exclude={"type"})
    assert set(arguments) <= set(keras_config), "every argument is a Keras argument"
    for argument, value in arguments.items():
        if value is None or isinstance(value, bool):
            assert value is keras_config[argument], argument
        else:  # Keras reports the learning rate as a float32
            assert value == pytest.approx(keras_config[argument], rel=1e-6), argument


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sgd", SGD),
        ("SGD", SGD),
        ("adagrad", Adagrad),
        ("rmsprop", RMSprop),
        ("RMSprop", RMSprop),
        ("adam", Adam),
        ("ADAM", Adam),
        ("adamax", Adamax),
        ("nadam", Nadam),
    ],
)
def test_optimizer_given_by_name_gets_its_defaults(name: str, expected: type) -> None:
    spec = ExperimentCreate.model_validate(_with_optimizer(name))

    assert spec.compile.optimizer == expected(type=expected.__name__)


def test_compile_and_fit_defaults() -> None:
    data = _with_layers(FLATTEN, SOFTMAX_10)
    data["compile"] = {"optimizer": "adam"}
    del data["fit"]

    spec = ExperimentCreate.model_validate(data)

    assert spec.compile.loss == "sparse_categorical_crossentropy"
    assert spec.compile.metrics == ["accuracy"]
    assert (spec.fit.epochs, spec.fit.batch_size, spec.fit.validation_size) == (10, 32, 5000)
    assert spec.fit.train_size is None
    assert spec.fit.early_stopping is None


def test_fit_with_every_argument() -> None:
    fit = {
        "epochs": 3,
        "batch_size": 128,
        "validation_size": 1000,
        "validation_split": None,
        "train_size": 10_000,
        "seed": 7,
        "early_stopping": {
            "monitor": "val_accuracy",
            "patience": 2,
            "min_delta": 0.001,
            "restore_best_weights": True,
        },
        "reduce_lr_on_plateau": {
            "monitor": "val_loss",
            "factor": 0.5,
            "patience": 1,
            "min_delta": 0.01,
            "cooldown": 1,
            "min_lr": 1e-5,
        },
        "layer_health": False,
    }

    spec = ExperimentCreate.model_validate(tiny_spec(**fit))

    assert spec.fit.model_dump() == fit


def test_net_may_end_in_a_softmax_activation_layer() -> None:
    data = _with_layers(
        FLATTEN, {"type": "Dense", "units": 10}, {"type": "Activation", "activation": "softmax"}
    )

    assert ExperimentCreate.model_validate(data).parameter_count == 7850


@pytest.mark.parametrize(
    "factory", [leaky_relu_spec, batchnorm_spec, dropout_spec, conv_spec, tiny_spec]
)
def test_spec_survives_a_json_round_trip(factory: Any) -> None:
    spec = ExperimentCreate.model_validate(factory())

    assert ExperimentCreate.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize("net", NOTEBOOK_NETS)
def test_notebook_nets_parameter_count_without_keras(net: str) -> None:
    factory, counts = NOTEBOOK_NETS[net]
    spec = ExperimentCreate.model_validate(factory())

    inferred = infer_architecture(spec.layers)

    assert spec.parameter_count == counts.total
    assert sum(layer.trainable_params for layer in inferred) == counts.trainable
    assert inferred[-1].output_shape == (10,)


def test_conv_net_accepted_and_counted_as_keras_counts() -> None:
    spec = ExperimentCreate.model_validate(conv_spec())

    shapes = [layer.output_shape for layer in infer_architecture(spec.layers)]

    assert shapes == [(28, 28, 1), (26, 26, 32), (13, 13, 32), (5408,), (10,)]
    assert spec.parameter_count == 54_410 == dry_run(spec)["total_params"]


# --- rejected, naming the field -------------------------------------------------------------


def _dense(**arguments: Any) -> Spec:
    return {"type": "Dense", "units": 100, **arguments}


BAD_FIELDS = [
    # (request, where the error points, pydantic's error type)
    pytest.param(
        _with_layers(FLATTEN, {"type": "Dense2"}, SOFTMAX_10),
        ("layers", 1),
        "union_tag_invalid",
        id="unknown-layer",
    ),
    pytest.param(
        _with_layers(FLATTEN, {"units": 10}, SOFTMAX_10),
        ("layers", 1),
        "union_tag_not_found",
        id="layer-without-type",
    ),
    pytest.param(
        _with_layers(FLATTEN, _dense(size=3), SOFTMAX_10),
        ("layers", 1, "Dense", "size"),
        "extra_forbidden",
        id="unknown-argument",
    ),
    pytest.param(
        _with_layers(FLATTEN, {"type": "Dropout", "rate": 0.2, "seed": 1}, SOFTMAX_10),
        ("layers", 1, "Dropout", "seed"),
        "extra_forbidden",
        id="unknown-dropout-argument",
    ),
    pytest.param(
        _with_layers(FLATTEN, {"type": "Dense"}, SOFTMAX_10),
        ("layers", 1, "Dense", "units"),
        "missing",
        id="units-missing",
    ),
    pytest.param(
        _with_layers(FLATTEN, _dense(units=0), SOFTMAX_10),
        ("layers", 1, "Dense", "units"),
        "greater_than_equal",
        id="units-zero",
    ),
    pytest.param(
        _with_layers(FLATTEN, _dense(units=100_000), SOFTMAX_10),
        ("layers", 1, "Dense", "units"),
        "less_than_equal",
        id="units-too-many",
    ),
    pytest.param(
        _with_layers(FLATTEN, _dense(units=2.5), SOFTMAX_10),
        ("layers", 1, "Dense", "units"),
        "int_from_float",
        id="units-fractional",
    ),
    pytest.param(
        _with_layers(FLATTEN, _dense(activation="relu7"), SOFTMAX_10),
        ("layers", 1, "Dense", "activation"),
        "literal_error",
        id="unknown-activation",
    ),
    pytest.param(
        _with_layers(FLATTEN, _dense(kernel_initializer="he"), SOFTMAX_10),
        ("layers", 1, "Dense", "kernel_initializer"),
        "literal_error",
        id="unknown-initializer",
    ),
    pytest.param(
        _with_layers(FLATTEN, {"type": "Dropout", "rate": 1.0}, SOFTMAX_10),
        ("layers", 1, "Dropout", "rate"),
        "less_than",
        id="rate-one",
    ),
    pytest.param(
        _with_layers(FLATTEN, {"type": "Dropout", "rate": -0.1}, SOFTMAX_10),
        ("layers", 1, "Dropout", "rate"),
        "greater_than_equal",
        id="rate-negative",
    ),
    pytest.param(
        _with_layers(FLATTEN, {"type": "LeakyReLU", "alpha": -1}, SOFTMAX_10),
        ("layers", 1, "LeakyReLU", "alpha"),
        "greater_than_equal",
        id="slope-negative",
    ),
    pytest.param(
        _with_layers(FLATTEN, {"type": "BatchNormalization", "epsilon": 0}, SOFTMAX_10),
        ("layers", 1, "BatchNormalization", "epsilon"),
        "greater_than",
        id="epsilon-zero",
    ),
    pytest.param(
        _with_layers(
            IMAGE, {"type": "Conv2D", "filters": 0, "kernel_size": 3}, FLATTEN, SOFTMAX_10
        ),
        ("layers", 1, "Conv2D", "filters"),
        "greater_than_equal",
        id="filters-zero",
    ),
    pytest.param(
        _with_layers(IMAGE, {"type": "Conv2D", "filters": 8}, FLATTEN, SOFTMAX_10),
        ("layers", 1, "Conv2D", "kernel_size"),
        "missing",
        id="kernel-missing",
    ),
    pytest.param(
        _with_layers(
            IMAGE, {"type": "Conv2D", "filters": 8, "kernel_size": 29}, FLATTEN, SOFTMAX_10
        ),
        ("layers", 1, "Conv2D", "kernel_size"),
        "value_error",
        id="kernel-too-big",
    ),
    pytest.param(
        _with_layers(
            IMAGE, {"type": "Conv2D", "filters": 8, "kernel_size": [3, 0]}, FLATTEN, SOFTMAX_10
        ),
        ("layers", 1, "Conv2D", "kernel_size"),
        "greater_than_equal",
        id="kernel-pair-zero",
    ),
    pytest.param(
        _with_layers(
            IMAGE, {"type": "Conv2D", "filters": 8, "kernel_size": [3, 3, 3]}, FLATTEN, SOFTMAX_10
        ),
        ("layers", 1, "Conv2D", "kernel_size"),
        "too_long",
        id="kernel-triple",
    ),
    pytest.param(
        _with_layers(
            IMAGE,
            {"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "full"},
            FLATTEN,
            SOFTMAX_10,
        ),
        ("layers", 1, "Conv2D", "padding"),
        "literal_error",
        id="unknown-padding",
    ),
    pytest.param(
        _with_layers(IMAGE, {"type": "MaxPooling2D", "strides": 0}, FLATTEN, SOFTMAX_10),
        ("layers", 1, "MaxPooling2D", "strides"),
        "value_error",
        id="pool-strides-zero",
    ),
    pytest.param(
        _with_layers({"type": "Reshape", "target_shape": [28, 0, 28]}, FLATTEN, SOFTMAX_10),
        ("layers", 0, "Reshape", "target_shape", 1),
        "greater_than_equal",
        id="reshape-zero",
    ),
    pytest.param(
        _with_layers({"type": "Reshape", "target_shape": [1, 28, 28, 1]}, FLATTEN, SOFTMAX_10),
        ("layers", 0, "Reshape", "target_shape"),
        "too_long",
        id="reshape-4d",
    ),
    pytest.param(
        _with_layers(),
        ("layers",),
        "too_short",
        id="no-layers",
    ),
    pytest.param(
        _with_optimizer("adadelta"),
        ("compile", "optimizer"),
        "union_tag_invalid",
        id="unknown-optimizer",
    ),
    pytest.param(
        _with_optimizer({"type": "SGD", "lr": 0.1}),
        ("compile", "optimizer", "SGD", "lr"),
        "extra_forbidden",
        id="keras-2-lr",
    ),
    pytest.param(
        _with_optimizer({"type": "Adam", "learning_rate": 0}),
        ("compile", "optimizer", "Adam", "learning_rate"),
        "greater_than",
        id="learning-rate-zero",
    ),
    pytest.param(
        _with_optimizer({"type": "Nadam", "beta_1": 1.0}),
        ("compile", "optimizer", "Nadam", "beta_1"),
        "less_than",
        id="beta-one",
    ),
    pytest.param(
        _with_optimizer({"type": "SGD", "momentum": -0.5}),
        ("compile", "optimizer", "SGD", "momentum"),
        "greater_than_equal",
        id="momentum-negative",
    ),
    pytest.param(
        {**tiny_spec(), "compile": {"optimizer": "adam", "loss": "mse"}},
        ("compile", "loss"),
        "literal_error",
        id="unsupported-loss",
    ),
    pytest.param(
        {**tiny_spec(), "compile": {"optimizer": "adam", "metrics": ["auc"]}},
        ("compile", "metrics", 0),
        "literal_error",
        id="unsupported-metric",
    ),
    pytest.param(
        _with_optimizer({"type": "Adagrad", "initial_accumulator_value": math.inf}),
        ("compile", "optimizer", "Adagrad", "initial_accumulator_value"),
        "finite_number",
        id="accumulator-infinite",
    ),
    pytest.param(tiny_spec(epochs=0), ("fit", "epochs"), "greater_than_equal", id="epochs-zero"),
    pytest.param(
        tiny_spec(early_stopping={"min_delta": math.inf}),
        ("fit", "early_stopping", "min_delta"),
        "finite_number",
        id="min-delta-infinite",
    ),
    pytest.param(
        tiny_spec(batch_size=-1), ("fit", "batch_size"), "greater_than_equal", id="batch-negative"
    ),
    pytest.param(
        tiny_spec(validation_size=40_000),
        ("fit", "validation_size"),
        "less_than_equal",
        id="validation-too-big",
    ),
    pytest.param(tiny_spec(shuffle=True), ("fit", "shuffle"), "extra_forbidden", id="fit-extra"),
    pytest.param(
        tiny_spec(early_stopping={"monitor": "val_auc"}),
        ("fit", "early_stopping", "monitor"),
        "literal_error",
        id="unknown-monitor",
    ),
    pytest.param({**tiny_spec(), "name": ""}, ("name",), "string_too_short", id="name-empty"),
    pytest.param({**tiny_spec(), "name": "  "}, ("name",), "string_pattern_mismatch", id="blank"),
    pytest.param(
        {key: value for key, value in tiny_spec().items() if key != "name"},
        ("name",),
        "missing",
        id="name-missing",
    ),
    pytest.param({**tiny_spec(), "owner": "me"}, ("owner",), "extra_forbidden", id="top-extra"),
]


@pytest.mark.parametrize(("data", "loc", "error_type"), BAD_FIELDS)
def test_bad_field_rejected_naming_it(data: Spec, loc: tuple[Any, ...], error_type: str) -> None:
    errors = _errors(data)

    # A union (int or [h, w]) adds the member tried to the location; the field comes first.
    found = [(error["loc"][: len(loc)], error["type"]) for error in errors]
    assert (loc, error_type) in found, errors


BAD_NETS = [
    # (layers, what the message must say)
    pytest.param(
        [FLATTEN, {"type": "Conv2D", "filters": 8, "kernel_size": 3}, FLATTEN, SOFTMAX_10],
        ["layers[1] (Conv2D)", "(784,)", "before the Flatten"],
        id="conv-on-flat",
    ),
    pytest.param(
        [FLATTEN, _dense(), {"type": "MaxPooling2D"}, FLATTEN, SOFTMAX_10],
        ["layers[2] (MaxPooling2D)", "(100,)"],
        id="pooling-on-flat",
    ),
    pytest.param(
        [{"type": "Conv2D", "filters": 8, "kernel_size": 3}, FLATTEN, SOFTMAX_10],
        ["layers[0] (Conv2D)", "(28, 28)", '"target_shape": [28, 28, 1]'],
        id="conv-without-channels",
    ),
    pytest.param(
        [{"type": "Reshape", "target_shape": [28, 28, 2]}, FLATTEN, SOFTMAX_10],
        ["layers[0] (Reshape)", "784", "1568"],
        id="impossible-reshape",
    ),
    pytest.param(
        [
            IMAGE,
            {"type": "Conv2D", "filters": 8, "kernel_size": 28},
            {"type": "MaxPooling2D"},
            FLATTEN,
            SOFTMAX_10,
        ],
        ["layers[2] (MaxPooling2D)", "does not fit", "1x1"],
        id="window-too-big",
    ),
    pytest.param(
        [FLATTEN, {"type": "Dense", "units": 10}],
        ["last layer", "non-softmax", "(10,)"],
        id="last-not-softmax",
    ),
    pytest.param(
        [FLATTEN, {"type": "Dense", "units": 10, "activation": "relu"}],
        ["last layer", "non-softmax"],
        id="last-relu",
    ),
    pytest.param(
        [FLATTEN, {"type": "Dense", "units": 12, "activation": "softmax"}],
        ["last layer", "(12,)", "10 probabilities"],
        id="last-twelve-way",
    ),
    pytest.param(
        [SOFTMAX_10],
        ["last layer", "(28, 10)"],
        id="softmax-without-flatten",
    ),
    pytest.param(
        [FLATTEN, SOFTMAX_10, {"type": "Dropout", "rate": 0.1}],
        ["last layer", "non-softmax"],
        id="dropout-after-softmax",
    ),
]


@pytest.mark.parametrize(("layers", "phrases"), BAD_NETS)
def test_unbuildable_net_rejected_naming_the_layer(layers: list[Spec], phrases: list[str]) -> None:
    errors = _errors(_with_layers(*layers))

    assert [error["loc"] for error in errors] == [("layers",)]
    for phrase in phrases:
        assert phrase in errors[0]["msg"]


@pytest.mark.parametrize(
    ("fit", "phrase"),
    [
        ({"validation_size": 5000, "train_size": 55_001}, "55000 training images"),
        ({"validation_size": 0, "early_stopping": {}}, "validation_size is 0"),
    ],
)
def test_inconsistent_fit_rejected_saying_why(fit: Spec, phrase: str) -> None:
    errors = _errors(tiny_spec(**fit))

    assert [error["loc"] for error in errors] == [("fit",)]
    assert phrase in errors[0]["msg"]
