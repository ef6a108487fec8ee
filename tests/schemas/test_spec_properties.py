"""Property-based tests of the spec schema: any JSON is either a buildable net or a ValidationError.

Near-miss requests look like real ones with a value wrong here and there (out of range, unknown
name, inf or nan, which Python's json module and so FastAPI accept); noisy requests may also have
arbitrary JSON anywhere. Valid nets are also built with Keras to check the pure-Python counts.
"""

from __future__ import annotations

import math
from copy import deepcopy
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.ml.build import dry_run
from service.schemas.experiments import ExperimentCreate
from service.spec.architecture import infer_architecture
from service.spec.layers import ACTIVATIONS as ACTIVATION_NAMES
from service.spec.layers import INITIALIZERS as INITIALIZER_NAMES
from service.spec.optimizers import OPTIMIZER_TYPES, SGD, Adagrad, Adam, Adamax, Nadam, RMSprop
from tests.factories import (
    EVERY_OPTIMIZER_ARGUMENT,
    FLATTEN,
    IMAGE,
    SOFTMAX_10,
    batchnorm_spec,
    conv_spec,
    dropout_spec,
    leaky_relu_spec,
    tiny_spec,
)

Strategy = st.SearchStrategy[Any]

JSON: Strategy = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
NON_FINITE = (math.inf, -math.inf, math.nan)


def _occasionally(valid: Strategy, *wrong: Any) -> Strategy:
    """Usually a value from `valid`, about one time in twelve one of the `wrong` values."""
    return st.integers(0, 11).flatmap(lambda roll: st.sampled_from(wrong) if roll == 11 else valid)


def _fraction(low: float = 0.0, high: float = 0.99) -> Strategy:
    return _occasionally(st.floats(low, high), -0.1, 1.0, 1.5, *NON_FINITE)


ACTIVATIONS = _occasionally(st.sampled_from([*ACTIVATION_NAMES, None]), "relu7", "Softmax")
INITIALIZERS = _occasionally(st.sampled_from(INITIALIZER_NAMES), "he", "glorot")
WINDOWS = _occasionally(
    st.integers(1, 5) | st.lists(st.integers(1, 5), min_size=2, max_size=2),
    0,
    29,
    -3,
    2.5,
    [3],
    [3, 0],
    [3, 3, 3],
)
PADDINGS = _occasionally(st.sampled_from(["valid", "same"]), "full", "SAME")
TARGET_SHAPES = _occasionally(
    st.sampled_from([[28, 28, 1], [784], [7, 112], [14, 14, 4], [7, 7, 16], [28, 28]]),
    [28, 28, 2],
    [],
    [0, 784],
    [-1, 28, 28],
    [1, 28, 28, 1],
)
CLIP = _occasionally(st.none() | st.floats(0.01, 10.0), 0.0, -1.0, "1.0", *NON_FINITE)
SCHEDULES = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["ExponentialDecay", "InverseTimeDecay", "CosineDecay"]),
            "initial_learning_rate": _occasionally(st.floats(1e-4, 0.1), 0.0, "0.01"),
            "decay_steps": _occasionally(st.integers(1, 10_000), 0, 2.5),
        },
        optional={"decay_rate": _fraction(0.01, 1.0), "staircase": st.booleans()},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("PiecewiseConstantDecay"),
            "boundaries": st.lists(st.integers(0, 5000), min_size=1, max_size=3),
            "values": st.lists(st.floats(1e-4, 0.1), min_size=1, max_size=4),
        }
    ),
    st.just({"type": "exponentialdecay"}),
)
OPTIMIZER_ARGUMENTS: dict[str, Strategy] = {
    "learning_rate": _occasionally(st.floats(1e-5, 1.0), 0.0, -0.1, 11.0, "0.01", *NON_FINITE)
    | SCHEDULES,
    "clipnorm": CLIP,
    "clipvalue": CLIP,
    "global_clipnorm": CLIP,
    "momentum": _fraction(),
    "rho": _fraction(),
    "beta_1": _fraction(),
    "beta_2": _fraction(),
    "epsilon": _fraction(1e-9, 1.0),
    "initial_accumulator_value": _occasionally(st.floats(0.0, 1.0), -1.0, *NON_FINITE),
    "nesterov": st.booleans(),
    "amsgrad": st.booleans(),
    "centered": st.booleans(),
}


def _requests(*, noisy: bool) -> Strategy:
    """Experiment requests shaped like real ones, near misses included.

    With `noisy`, any value, any layer and the whole request may also be arbitrary JSON.
    """

    def value(strategy: Strategy) -> Strategy:
        return st.one_of(strategy, strategy, strategy, JSON) if noisy else strategy

    def fields(kind: str, required: dict[str, Strategy], optional: dict[str, Strategy]) -> Strategy:
        return st.fixed_dictionaries(
            {"type": st.just(kind), **{key: value(v) for key, v in required.items()}},
            optional={key: value(v) for key, v in optional.items()},
        )

    regularizer = _occasionally(
        st.none()
        | st.sampled_from(["l1", "l2", "L2"])
        | fields("l1", {}, {"l1": _fraction()})
        | fields("l2", {}, {"l2": _fraction()})
        | fields("l1_l2", {}, {"l1": _fraction(), "l2": _fraction()}),
        "l3",
        {"type": "L2"},
        {"type": "l2", "l2": "0.01"},
    )
    constraint = _occasionally(
        st.none()
        | fields("max_norm", {}, {"max_value": _fraction(0.1, 5.0), "axis": st.integers(-1, 2)}),
        "maxnorm",
        {"type": "max_norm", "axis": 7},
    )
    dense = fields(
        "Dense",
        {"units": _occasionally(st.integers(1, 300), 0, -1, 16_385, 2.5, "ten", True)},
        {
            "activation": ACTIVATIONS,
            "kernel_initializer": INITIALIZERS,
            "use_bias": _occasionally(st.booleans(), "true", 1),
            "kernel_regularizer": regularizer,
            "kernel_constraint": constraint,
        },
    )
    new_activations = st.one_of(
        fields("PReLU", {}, {"shared_axes": st.none() | st.just([1]) | st.just([3])}),
        fields("ELU", {}, {"alpha": _fraction()}),
        fields("ReLU", {}, {"max_value": st.none() | _fraction(), "negative_slope": _fraction()}),
        fields("AlphaDropout", {"rate": _fraction()}, {}),
    )
    activation = fields("Activation", {"activation": ACTIVATIONS}, {})
    leaky_relu = _occasionally(
        fields("LeakyReLU", {}, {"negative_slope": _fraction()})
        | fields("LeakyReLU", {}, {"alpha": _fraction()}),
        {"type": "LeakyReLU", "alpha": 0.1, "negative_slope": 0.2},
    )
    batchnorm = fields(
        "BatchNormalization", {}, {"momentum": _fraction(), "epsilon": _fraction(1e-9, 1.0)}
    )
    dropout = fields("Dropout", {"rate": _fraction()}, {})
    conv2d = fields(
        "Conv2D",
        {"filters": _occasionally(st.integers(1, 16), 0, 2049), "kernel_size": WINDOWS},
        {
            "strides": WINDOWS,
            "padding": PADDINGS,
            "activation": ACTIVATIONS,
            "kernel_initializer": INITIALIZERS,
            "use_bias": st.booleans(),
        },
    )
    pooling = fields(
        "MaxPooling2D",
        {},
        {"pool_size": WINDOWS, "strides": st.none() | WINDOWS, "padding": PADDINGS},
    )
    reshape = fields("Reshape", {"target_shape": TARGET_SHAPES}, {})
    misnamed = st.fixed_dictionaries(
        {"type": st.sampled_from(["Conv1D", "dense", "", "Softmax"])},
        optional={"units": st.integers(-1, 20)},
    )
    any_layer = value(
        st.one_of(
            dense,
            activation,
            leaky_relu,
            new_activations,
            batchnorm,
            dropout,
            conv2d,
            pooling,
            reshape,
        )
    )

    # Mostly nets shaped like real ones: [image block,] Flatten, dense block, 10-way softmax.
    image_block = st.lists(
        st.one_of(conv2d, pooling, batchnorm, activation, dropout, leaky_relu), max_size=3
    ).map(lambda layers: [IMAGE, *layers, FLATTEN])
    dense_block = st.lists(
        st.one_of(dense, dropout, batchnorm, leaky_relu, activation, new_activations), max_size=4
    )
    tail = _occasionally(
        st.sampled_from(
            [
                [SOFTMAX_10],
                [{"type": "Dense", "units": 10}, {"type": "Activation", "activation": "softmax"}],
            ]
        ),
        [],
        [{"type": "Dense", "units": 10}],
        [{"type": "Dense", "units": 12, "activation": "softmax"}],
        [SOFTMAX_10, {"type": "Dropout", "rate": 0.1}],
        [{"type": "Conv2D", "filters": 4, "kernel_size": 3}, FLATTEN, SOFTMAX_10],
    )
    head = _occasionally(
        st.just([]) | st.just([{"type": "Input", "shape": [28, 28]}]),
        [{"type": "Input", "shape": [784]}],
    )
    shaped = st.tuples(head, st.just([FLATTEN]) | image_block, dense_block, tail).map(
        lambda parts: [layer for part in parts for layer in part]
    )
    nets = st.one_of(shaped, shaped, shaped, st.lists(any_layer | misnamed, min_size=1, max_size=6))

    optimizers = st.one_of(
        _occasionally(
            st.sampled_from([*OPTIMIZER_TYPES, "adam", "sgd", "RMSPROP"]), "adadelta", ""
        ),
        *[
            fields(
                model.__name__,
                {},
                {name: OPTIMIZER_ARGUMENTS[name] for name in model.model_fields if name != "type"},
            )
            for model in (SGD, Adagrad, RMSprop, Adam, Adamax, Nadam)
        ],
    )
    compile_ = st.fixed_dictionaries(
        {"optimizer": value(optimizers)},
        optional={
            "loss": _occasionally(st.just("sparse_categorical_crossentropy"), "mse"),
            "metrics": _occasionally(st.just(["accuracy"]) | st.just([]), ["auc"], "accuracy"),
        },
    )
    early_stopping = st.fixed_dictionaries(
        {},
        optional={
            "monitor": _occasionally(
                st.sampled_from(["val_loss", "val_accuracy", "loss", "accuracy"]), "val_auc"
            ),
            "patience": value(_occasionally(st.integers(0, 20), -1)),
            "min_delta": value(_occasionally(st.floats(0.0, 1.0), -0.1, *NON_FINITE)),
            "restore_best_weights": st.booleans(),
        },
    )
    reduce_lr = st.fixed_dictionaries(
        {},
        optional={
            "monitor": _occasionally(st.sampled_from(["val_loss", "loss"]), "val_auc"),
            "factor": _fraction(0.01, 0.99),
            "patience": value(_occasionally(st.integers(0, 20), -1)),
            "min_lr": _occasionally(st.floats(0.0, 1e-3), -1.0),
        },
    )
    fit = st.fixed_dictionaries(
        {},
        optional={
            "epochs": value(_occasionally(st.integers(1, 50), 0, 1001)),
            "batch_size": value(_occasionally(st.integers(1, 512), 0, 8193)),
            "validation_size": value(_occasionally(st.integers(0, 10_000), -1, 30_001)),
            "train_size": value(
                _occasionally(st.none() | st.integers(1, 50_000), 0, 59_000, 60_001)
            ),
            "seed": value(_occasionally(st.integers(0, 2**31 - 1), -1, 2**31)),
            "validation_split": value(_occasionally(st.none() | st.floats(0.01, 0.5), 0.0, 1.0)),
            "early_stopping": value(st.none() | early_stopping),
            "reduce_lr_on_plateau": value(st.none() | reduce_lr),
        },
    )
    request = st.fixed_dictionaries(
        {
            "name": value(_occasionally(st.text(min_size=1, max_size=12), "", "  ", "x" * 201)),
            "layers": value(nets),
            "compile": value(compile_),
        },
        optional={"fit": value(fit), "description": st.none() | st.text(max_size=12)},
    )
    if noisy:
        unknown_key = st.fixed_dictionaries({}, optional={"owner": JSON})
        return st.tuples(request, unknown_key).map(lambda p: {**p[0], **p[1]}) | JSON
    return request


def _accepted_or_validation_error(request: Any) -> bool:
    """Whether `request` was accepted; fails on any exception but a ValidationError (a 500)."""
    try:
        spec = ExperimentCreate.model_validate(request)
    except ValidationError:
        return False

    inferred = infer_architecture(spec.layers)
    assert inferred[-1].output_shape == (10,)
    assert isinstance(spec.parameter_count, int)
    assert spec.parameter_count >= 0
    assert spec.parameter_count == sum(layer.params for layer in inferred)
    # What the service stores as JSON is what the worker reads back.
    assert ExperimentCreate.model_validate_json(spec.model_dump_json()) == spec
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=_requests(noisy=False))
def test_near_miss_request_is_a_buildable_spec_or_a_validation_error(request: Any) -> None:
    event("accepted" if _accepted_or_validation_error(request) else "rejected")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=_requests(noisy=True))
def test_noisy_request_is_a_buildable_spec_or_a_validation_error(request: Any) -> None:
    event("accepted" if _accepted_or_validation_error(request) else "rejected")


# --- one wrong value anywhere, exhaustively -------------------------------------------------
# Random requests rarely put, say, Infinity exactly on min_delta with everything else valid, so
# every position of a few complete requests also gets every edge value (or loses its key).

DELETE = object()
EDGE_VALUES = (*NON_FINITE, 0, -1, 0.5, 1e308, 2**63, True, None, "", "x", [], {}, [1, 2], DELETE)
EVERYTHING_NET = [
    IMAGE,
    {
        "type": "Conv2D",
        "filters": 4,
        "kernel_size": [3, 3],
        "strides": 1,
        "padding": "same",
        "activation": "relu",
        "kernel_initializer": "he_normal",
        "use_bias": True,
    },
    {"type": "BatchNormalization", "momentum": 0.9, "epsilon": 0.001},
    {"type": "MaxPooling2D", "pool_size": 2, "strides": [2, 2], "padding": "valid"},
    {"type": "Activation", "activation": "relu"},
    FLATTEN,
    {
        "type": "Dense",
        "units": 32,
        "activation": None,
        "kernel_initializer": "glorot_uniform",
        "use_bias": False,
    },
    {"type": "LeakyReLU", "alpha": 0.2},
    {"type": "Dropout", "rate": 0.2},
    {"type": "Reshape", "target_shape": [32]},
    SOFTMAX_10,
]
EVERYTHING_FIT = {
    "epochs": 3,
    "train_size": 1000,
    "early_stopping": {
        "monitor": "val_loss",
        "patience": 1,
        "min_delta": 0.01,
        "restore_best_weights": True,
    },
}
SOFTMAX_LAYER_NET = [
    FLATTEN,
    {"type": "Dense", "units": 10},
    {"type": "Activation", "activation": "softmax"},
]
# Complete requests, one per optimizer (with every argument), together using every layer.
BASES = {
    optimizer["type"]: factory(
        compile={
            "optimizer": optimizer,
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        fit=EVERYTHING_FIT,
        description="every argument",
    )
    for factory, optimizer in zip(
        [
            leaky_relu_spec,
            batchnorm_spec,
            dropout_spec,
            conv_spec,
            partial(conv_spec, layers=EVERYTHING_NET),
            partial(leaky_relu_spec, layers=SOFTMAX_LAYER_NET),
        ],
        EVERY_OPTIMIZER_ARGUMENT,
        strict=True,
    )
}


def _positions(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path to every value inside `document`, containers included."""
    children: list[tuple[Any, Any]] = []
    if isinstance(document, dict):
        children = list(document.items())
    elif isinstance(document, list):
        children = list(enumerate(document))
    paths = []
    for key, child in children:
        paths.append((*path, key))
        paths.extend(_positions(child, (*path, key)))
    return paths


def _replaced(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = deepcopy(document)
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if new is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return copy


@pytest.mark.parametrize("base", BASES)
def test_one_edge_value_anywhere_is_accepted_cleanly_or_rejected(base: str) -> None:
    request = BASES[base]
    ExperimentCreate.model_validate(request)  # the unchanged request is valid

    failures = []
    for path in _positions(request):
        for new in EDGE_VALUES:
            try:
                _accepted_or_validation_error(_replaced(request, path, new))
            except Exception as error:  # collect them all, then report
                failures.append(f"{path} = {'<deleted>' if new is DELETE else new!r}: {error!r}")
    assert not failures, "\n".join(failures)


# --- valid nets: the pure-Python count is Keras's count -------------------------------------

VALID_DENSE = st.fixed_dictionaries(
    {"type": st.just("Dense"), "units": st.integers(1, 64)},
    optional={
        "activation": st.sampled_from(ACTIVATION_NAMES),
        "kernel_initializer": st.sampled_from(["he_normal", "glorot_uniform", "zeros"]),
        "use_bias": st.booleans(),
    },
)
VALID_MIDDLE = st.one_of(
    VALID_DENSE,
    st.builds(lambda rate: {"type": "Dropout", "rate": rate}, st.floats(0.0, 0.9)),
    st.builds(lambda m: {"type": "BatchNormalization", "momentum": m}, st.floats(0.0, 1.0)),
    st.builds(lambda slope: {"type": "LeakyReLU", "alpha": slope}, st.floats(0.0, 1.0)),
)
VALID_MLPS = st.lists(VALID_MIDDLE, max_size=5).map(lambda middle: [FLATTEN, *middle, SOFTMAX_10])


def _agrees_with_keras(layers: list[Any]) -> None:
    spec = ExperimentCreate.model_validate({**tiny_spec(), "layers": layers})
    inferred = infer_architecture(spec.layers)

    summary = dry_run(spec)

    assert spec.parameter_count == summary["total_params"]
    assert sum(layer.trainable_params for layer in inferred) == summary["trainable_params"]
    assert [list(layer.output_shape) for layer in inferred] == [
        layer["output_shape"][1:] for layer in summary["layers"]
    ]


@settings(max_examples=25, deadline=None)
@given(layers=VALID_MLPS)
def test_valid_mlp_count_is_the_keras_count(layers: list[Any]) -> None:
    _agrees_with_keras(layers)


VALID_WINDOW = st.integers(1, 5) | st.lists(st.integers(1, 5), min_size=2, max_size=2)
VALID_IMAGE_LAYER = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("Conv2D"), "filters": st.integers(1, 8), "kernel_size": VALID_WINDOW},
        optional={
            "strides": st.integers(1, 3) | st.lists(st.integers(1, 3), min_size=2, max_size=2),
            "padding": st.sampled_from(["valid", "same"]),
            "use_bias": st.booleans(),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("MaxPooling2D")},
        optional={
            "pool_size": VALID_WINDOW,
            "strides": st.none() | st.integers(1, 3),
            "padding": st.sampled_from(["valid", "same"]),
        },
    ),
    st.just({"type": "BatchNormalization"}),
)
VALID_CNNS = st.tuples(
    st.sampled_from([[28, 28, 1], [14, 56, 1], [7, 7, 16]]),
    st.lists(VALID_IMAGE_LAYER, min_size=1, max_size=4),
).map(lambda p: [{"type": "Reshape", "target_shape": p[0]}, *p[1], FLATTEN, SOFTMAX_10])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(layers=VALID_CNNS)
def test_valid_cnn_count_is_the_keras_count(layers: list[Any]) -> None:
    try:
        ExperimentCreate.model_validate({**tiny_spec(), "layers": layers})
    except ValidationError:
        assume(False)  # a window that does not fit; the first property covers rejection
    _agrees_with_keras(layers)
