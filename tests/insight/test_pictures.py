"""The layer-health chart charts Dense and Conv2D kernels only, with names that fit, wide and
narrow; the confusion map fits a phone's width."""

from __future__ import annotations

import itertools

from service.charts import Text
from service.insight.layers import EpochLayers, LayerStats
from service.insight.pictures import gradients_chart


def stats(depth: int, kind: str, weight: str, norm: float, activation: str = "relu") -> LayerStats:
    return LayerStats(
        depth=depth,
        name=f"{kind.lower()}_{depth}",
        type=kind,
        weight=weight,
        activation=activation,
        gradient_norm=norm,
        weight_norm=1.0,
        update_ratio=0.01,
        activation_mean=0.1,
        activation_std=0.2,
        dead_fraction=None,
        saturated_fraction=None,
    )


# The notebook's BatchNormalization net: BN, Dense, BN, Dense, BN, Dense.
BATCHNORM_NET = [
    EpochLayers(
        epoch=epoch,
        layers=[
            stats(1, "BatchNormalization", "gamma", 0.9, "linear"),
            stats(2, "Dense", "kernel", 0.05),
            stats(3, "BatchNormalization", "gamma", 1.5, "linear"),
            stats(4, "Dense", "kernel", 0.08),
            stats(5, "BatchNormalization", "gamma", 2.0, "linear"),
            stats(6, "Dense", "kernel", 0.3, "softmax"),
        ],
    )
    for epoch in (1, 2, 3)
]


def texts(shapes: list) -> list[str]:
    return [shape.text for shape in shapes if isinstance(shape, Text)]


def test_batchnorm_layers_are_left_out_and_dense_layers_named_as_written() -> None:
    for narrow in (False, True):
        width, _, shapes = gradients_chart(BATCHNORM_NET, title="batchnorm", narrow=narrow)
        labels = texts(shapes)
        assert labels.count("Dense relu") == 2
        assert labels.count("Dense softmax") == 1
        assert not [label for label in labels if "Batch" in label]
        assert "Dense/Conv2D layer, 1 = nearest the input" in labels
        assert (width == 360) == narrow


# 8 sigmoid layers and the softmax: nine names under a chart 600 (or 360) px wide.
DEEP_SIGMOID_NET = [
    EpochLayers(
        epoch=1,
        layers=[
            *[stats(depth, "Dense", "kernel", 10.0**-depth, "sigmoid") for depth in range(1, 9)],
            stats(9, "Dense", "kernel", 0.1, "softmax"),
        ],
    )
]


def test_layer_names_fit_between_their_ticks() -> None:
    for narrow in (False, True):
        _, _, shapes = gradients_chart(BATCHNORM_NET, title="batchnorm", narrow=narrow)
        names = [s for s in shapes if isinstance(s, Text) and s.text.startswith("Dense ")]
        spacing = min(b.x - a.x for a, b in itertools.pairwise(names))
        widest = max(len(name.text) for name in names) * 0.6 * names[0].size  # ~0.6 em a char
        assert widest < spacing, (narrow, widest, spacing)


def test_a_deep_net_s_layer_names_take_rows_so_that_none_overlap() -> None:
    for narrow in (False, True):
        _, height, shapes = gradients_chart(DEEP_SIGMOID_NET, title="deep", narrow=narrow)
        names = [s for s in shapes if isinstance(s, Text) and s.text.startswith("Dense ")]
        assert len(names) == 9
        rows = {name.y for name in names}
        assert len(rows) > 1, "nine names on one row overlap"
        for y in rows:
            row = [name for name in names if name.y == y]
            widest = max(len(name.text) for name in row) * 0.6 * row[0].size
            assert all(b.x - a.x > widest for a, b in itertools.pairwise(row)), (narrow, y)
        title = next(s for s in shapes if isinstance(s, Text) and s.text.startswith("Dense/"))
        assert title.y > max(rows) + 8, "the axis title sits below every row of names"
        assert height > title.y
