"""Layer lists compared as a diff compares lines, said in a learner's words."""

from __future__ import annotations

from typing import Any

from service.studies.comparison import folded, layer_changes, net_summary

FLATTEN = {"type": "Flatten"}


def dense(units: int, activation: str | None = None, **more: Any) -> dict[str, Any]:
    return {"type": "Dense", "units": units, "activation": activation, **more}


OUTPUT = dense(10, "softmax")


def test_activation_layers_fold_into_the_dense_before_them() -> None:
    layers = [FLATTEN, dense(300), {"type": "LeakyReLU", "negative_slope": 0.2}, OUTPUT]
    assert [layer.get("activation") for layer in folded(layers)] == [
        None,
        "LeakyReLU(0.2)",
        "softmax",
    ]
    assert net_summary(layers) == "Flatten, Dense 300 LeakyReLU(0.2), Dense 10 softmax"
    assert net_summary([FLATTEN, dense(50), OUTPUT]) == "Flatten, Dense 50 linear, Dense 10 softmax"


def test_same_layers_have_no_changes() -> None:
    layers = [FLATTEN, dense(300, "relu"), OUTPUT]
    assert layer_changes(layers, [dict(layer) for layer in layers]) == []


def test_one_changed_layer_is_named_by_itself() -> None:
    before = [FLATTEN, dense(300, "relu"), dense(100, "relu"), OUTPUT]
    after = [FLATTEN, dense(300, "relu"), dense(50, "relu"), OUTPUT]
    assert layer_changes(before, after) == ["Dense 100: units 100 -> 50"]


def test_a_deeper_net_adds_layers_where_they_go() -> None:
    before = [FLATTEN, dense(100, "relu"), OUTPUT]
    after = [
        FLATTEN,
        dense(300, "relu"),
        dense(100, "relu"),
        {"type": "Dropout", "rate": 0.5},
        OUTPUT,
    ]
    changes = layer_changes(before, after)
    assert "+ Dropout 0.5 after Dense 100" in changes
    assert len(changes) == 2  # one added Dense, one added Dropout; nothing lined up wrongly
    assert any(change.startswith("+ Dense") for change in changes)


def test_a_layer_of_another_type_is_removed_and_added() -> None:
    before = [FLATTEN, {"type": "Dropout", "rate": 0.2}, dense(100, "relu"), OUTPUT]
    after = [FLATTEN, {"type": "BatchNormalization"}, dense(100, "relu"), OUTPUT]
    assert layer_changes(before, after) == [
        "+ BatchNormalization after Flatten",
        "- Dropout 0.2 after Flatten",
    ]


def test_a_first_layer_inserted_is_at_the_start() -> None:
    before = [FLATTEN, OUTPUT]
    after = [
        {"type": "Input", "shape": [28, 28]},
        {"type": "Reshape", "target_shape": [28, 28, 1]},
        FLATTEN,
        OUTPUT,
    ]
    assert layer_changes(before, after) == ["+ Reshape at the start"]


def test_layers_added_together_are_said_together() -> None:
    before = [FLATTEN, OUTPUT]
    after = [
        FLATTEN,
        {"type": "BatchNormalization"},
        dense(32, "relu"),
        {"type": "BatchNormalization"},
        OUTPUT,
    ]
    assert layer_changes(before, after) == [
        "+ BatchNormalization, Dense 32, BatchNormalization after Flatten"
    ]
