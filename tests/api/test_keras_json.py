"""POST /experiments with Keras's own JSON: `model.to_json()` of real Keras nets (Keras 3's
format, and tf.keras 2's), and `keras.optimizers.serialize(...)` as the optimizer."""

from __future__ import annotations

import json
from typing import Any

import keras
import pytest
from fastapi.testclient import TestClient

from service.schemas.experiments import ExperimentCreate
from service.spec.fingerprint import normalised_spec
from tests.factories import NOTEBOOK_NETS

NETS = sorted(NOTEBOOK_NETS)


def _chapter_net(net: str) -> keras.Sequential:
    """The chapter's nets as a learner writes them in Keras 3."""
    dense = keras.layers.Dense
    if net == "leaky_relu":
        hidden = [
            dense(300, kernel_initializer="he_normal"),
            keras.layers.LeakyReLU(),
            dense(100, kernel_initializer="he_normal"),
            keras.layers.LeakyReLU(),
        ]
    elif net == "batchnorm":
        hidden = [
            keras.layers.BatchNormalization(),
            dense(300, activation="relu"),
            keras.layers.BatchNormalization(),
            dense(100, activation="relu"),
            keras.layers.BatchNormalization(),
        ]
    else:
        hidden = [
            keras.layers.Dropout(rate=0.2),
            dense(300, activation="elu", kernel_initializer="he_normal"),
            keras.layers.Dropout(rate=0.2),
            dense(100, activation="elu", kernel_initializer="he_normal"),
            keras.layers.Dropout(rate=0.2),
        ]
    return keras.Sequential(
        [
            keras.Input(shape=[28, 28]),
            keras.layers.Flatten(),
            *hidden,
            dense(10, activation="softmax"),
        ]
    )


def _body(net: str, **fields: Any) -> dict[str, Any]:
    body = NOTEBOOK_NETS[net][0]()
    del body["layers"]
    return body | fields


def _normalised(body: dict[str, Any]) -> dict[str, Any]:
    return normalised_spec(ExperimentCreate.model_validate(body))


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("as_string", [True, False], ids=["string", "object"])
def test_to_json_of_each_chapter_net_gives_its_spec(
    client: TestClient, net: str, as_string: bool
) -> None:
    model_json = _chapter_net(net).to_json()
    body = _body(net, model=model_json if as_string else json.loads(model_json))
    response = client.post("/experiments", json=body)
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["spec"] == _normalised(NOTEBOOK_NETS[net][0]())
    summary = created["summary"]
    counts = (summary["total_params"], summary["trainable_params"], summary["non_trainable_params"])
    assert counts == tuple(NOTEBOOK_NETS[net][1])


def test_a_compiled_models_json_brings_its_compile_and_a_serialized_optimizer_reads(
    client: TestClient,
) -> None:
    model = _chapter_net("leaky_relu")
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.SGD(learning_rate=1e-3),
        metrics=["accuracy"],
    )
    body = _body("leaky_relu", model=model.to_json())
    del body["compile"]
    response = client.post("/experiments/validate", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["spec"] == _normalised(NOTEBOOK_NETS["leaky_relu"][0]())

    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 100, 0.9)
    serialized = keras.optimizers.serialize(keras.optimizers.Adam(schedule, beta_1=0.8))
    body = NOTEBOOK_NETS["leaky_relu"][0]()
    body["compile"]["optimizer"] = serialized
    response = client.post("/experiments/validate", json=body)
    assert response.status_code == 200, response.text
    optimizer = response.json()["spec"]["compile"]["optimizer"]
    assert (optimizer["type"], optimizer["beta_1"]) == ("Adam", 0.8)
    assert optimizer["learning_rate"] == {
        "type": "ExponentialDecay",
        "initial_learning_rate": 0.01,
        "decay_steps": 100,
        "decay_rate": 0.9,
        "staircase": False,
    }


# tf.keras 2's to_json() of the LeakyReLU net: batch_input_shape, plain dtypes, float32 floats
# written out, LeakyReLU's alpha; as TensorFlow 2.15 writes it.
TF_KERAS_2 = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {
                "class_name": "InputLayer",
                "config": {
                    "batch_input_shape": [None, 28, 28],
                    "dtype": "float32",
                    "sparse": False,
                    "ragged": False,
                    "name": "flatten_input",
                },
            },
            {
                "class_name": "Flatten",
                "config": {
                    "name": "flatten",
                    "trainable": True,
                    "dtype": "float32",
                    "batch_input_shape": [None, 28, 28],
                    "data_format": "channels_last",
                },
            },
            *(
                layer
                for units in (300, 100)
                for layer in (
                    {
                        "class_name": "Dense",
                        "config": {
                            "name": f"dense_{units}",
                            "trainable": True,
                            "dtype": "float32",
                            "units": units,
                            "activation": "linear",
                            "use_bias": True,
                            "kernel_initializer": {
                                "class_name": "HeNormal",
                                "config": {"seed": None},
                            },
                            "bias_initializer": {"class_name": "Zeros", "config": {}},
                            "kernel_regularizer": None,
                            "bias_regularizer": None,
                            "activity_regularizer": None,
                            "kernel_constraint": None,
                            "bias_constraint": None,
                        },
                    },
                    {
                        "class_name": "LeakyReLU",
                        "config": {
                            "name": f"leaky_re_lu_{units}",
                            "trainable": True,
                            "dtype": "float32",
                            "alpha": 0.30000001192092896,
                        },
                    },
                )
            ),
            {
                "class_name": "Dense",
                "config": {
                    "name": "dense_out",
                    "trainable": True,
                    "dtype": "float32",
                    "units": 10,
                    "activation": "softmax",
                    "use_bias": True,
                    "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                    "bias_initializer": {"class_name": "Zeros", "config": {}},
                    "kernel_regularizer": None,
                    "bias_regularizer": None,
                    "activity_regularizer": None,
                    "kernel_constraint": None,
                    "bias_constraint": None,
                },
            },
        ],
    },
    "keras_version": "2.15.0",
    "backend": "tensorflow",
}
TF_KERAS_2_SGD = {
    "class_name": "SGD",
    "config": {
        "name": "SGD",
        "weight_decay": None,
        "clipnorm": None,
        "global_clipnorm": None,
        "clipvalue": None,
        "use_ema": False,
        "ema_momentum": 0.99,
        "ema_overwrite_frequency": None,
        "jit_compile": True,
        "is_legacy_optimizer": False,
        "learning_rate": 0.0010000000474974513,
        "momentum": 0.0,
        "nesterov": False,
    },
}


def test_tf_keras_2_json_gives_the_same_spec(client: TestClient) -> None:
    body = _body("leaky_relu", model=json.dumps(TF_KERAS_2))
    body["compile"]["optimizer"] = TF_KERAS_2_SGD
    response = client.post("/experiments/validate", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["spec"] == _normalised(NOTEBOOK_NETS["leaky_relu"][0]())
    assert response.json()["summary"]["total_params"] == NOTEBOOK_NETS["leaky_relu"][1].total


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda model: model["config"]["layers"].insert(
                2, {"class_name": "Lambda", "config": {"function": "..."}}
            ),
            "layers[2] (Lambda): unknown layer class 'Lambda'",
        ),
        (
            lambda model: model["config"]["layers"][2]["config"].update(
                bias_initializer={"class_name": "Ones", "config": {}}
            ),
            "bias_initializer='ones' is not something the service sets",
        ),
        (
            lambda model: model.update(class_name="Functional"),
            "the service trains Sequential models",
        ),
        (
            lambda model: model["config"]["layers"][2]["config"].update(activation="relu6x"),
            "unknown activation 'relu6x'; did you mean 'relu6'?",
        ),
    ],
)
def test_what_the_spec_cannot_hold_is_named(client: TestClient, change: Any, words: str) -> None:
    model = json.loads(_chapter_net("leaky_relu").to_json())
    change(model)
    response = client.post("/experiments", json=_body("leaky_relu", model=model))
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


def test_layers_and_model_together_are_refused(client: TestClient) -> None:
    body = NOTEBOOK_NETS["leaky_relu"][0]() | {"model": _chapter_net("leaky_relu").to_json()}
    response = client.post("/experiments", json=body)
    assert response.status_code == 422
    assert "give layers or model (Keras's to_json()), not both" in response.json()["detail"]
