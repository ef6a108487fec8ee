"""Search spaces, trial generation (grid, random, tpe) and the pruning verdict, without a worker."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from service.domain import Status
from service.spec.notebook import notebook_spec
from service.studies.pruning import MedianPruning, SuccessiveHalving, prune_reason
from service.studies.rebuild import TrialRecord
from service.studies.samplers import ask_tpe, plan
from service.studies.space import Dimension, SpaceError, apply, corners, describe

SPACE = TypeAdapter(dict[str, Dimension])


def space(raw: dict[str, Any]) -> dict[str, Dimension]:
    return SPACE.validate_python(raw)


def test_grid_is_every_combination_last_path_fastest() -> None:
    trials = plan(
        "grid",
        space({"fit.batch_size": [32, 64], "layers[1].units": [10, 20, 30]}),
        n_trials=0,
        seed=0,
    )
    assert len(trials) == 6
    assert trials[0] == {"fit.batch_size": 32, "layers[1].units": 10}
    assert trials[1] == {"fit.batch_size": 32, "layers[1].units": 20}
    assert trials[-1] == {"fit.batch_size": 64, "layers[1].units": 30}


def test_grid_refuses_a_continuous_distribution() -> None:
    with pytest.raises(SpaceError, match="random or tpe"):
        plan(
            "grid",
            space({"fit.seed": {"type": "uniform", "low": 0, "high": 1}}),
            n_trials=0,
            seed=0,
        )


def test_random_draws_stay_in_range_and_repeat_with_the_seed() -> None:
    searched = space(
        {
            "compile.optimizer.learning_rate": {"type": "log_uniform", "low": 1e-4, "high": 1e-1},
            "layers[1].units": {"type": "int", "low": 16, "high": 256, "step": 16},
            "fit.batch_size": {"type": "choice", "values": [32, 64, 128]},
            "compile.optimizer.momentum": {"type": "uniform", "low": 0.0, "high": 0.9},
        }
    )
    first = plan("random", searched, n_trials=20, seed=3)
    assert first == plan("random", searched, n_trials=20, seed=3)
    assert first != plan("random", searched, n_trials=20, seed=4)
    assert first is not None
    assert len(first) == 20
    for params in first:
        assert 1e-4 <= params["compile.optimizer.learning_rate"] <= 1e-1
        assert params["layers[1].units"] % 16 == 0
        assert params["fit.batch_size"] in (32, 64, 128)
        assert 0.0 <= params["compile.optimizer.momentum"] <= 0.9


def test_tpe_asks_inside_the_space_from_our_trials() -> None:
    searched = space(
        {
            "compile.optimizer.learning_rate": {"type": "log_uniform", "low": 1e-4, "high": 1e-1},
            "compile.optimizer": [{"type": "SGD"}, {"type": "Adam"}],
        }
    )
    history = [
        TrialRecord(
            number=n,
            status=Status.SUCCEEDED,
            params={
                "compile.optimizer.learning_rate": 10 ** -(1 + n % 3),
                "compile.optimizer": {"type": "SGD"},
            },
            intermediate={1: 0.5 + n / 100},
            value=0.5 + n / 100,
        )
        for n in range(6)
    ]
    history.append(TrialRecord(number=6, status=Status.RUNNING, params=history[0].params))
    asked = ask_tpe(searched, history, maximise=True, seed=0, n_trials=10)
    assert 1e-4 <= asked["compile.optimizer.learning_rate"] <= 1e-1
    assert asked["compile.optimizer"] in ({"type": "SGD"}, {"type": "Adam"})
    assert asked == ask_tpe(searched, history, maximise=True, seed=0, n_trials=10)


def test_paths_set_values_and_name_missing_places() -> None:
    spec = notebook_spec("leaky_relu")
    changed = apply(
        spec, {"layers[1].units": 50, "compile.optimizer": {"type": "Adam"}, "fit.train_size": 100}
    )
    assert changed["layers"][1]["units"] == 50
    assert changed["compile"]["optimizer"] == {"type": "Adam"}
    assert changed["fit"]["train_size"] == 100
    assert spec["layers"][1]["units"] == 300  # the base is untouched
    with pytest.raises(SpaceError, match=r"layers\[9\]"):
        apply(spec, {"layers[9].units": 5})
    with pytest.raises(SpaceError, match=r"compile\.nothing"):
        apply(spec, {"compile.nothing.here": 5})


def test_corners_and_descriptions() -> None:
    searched = space({"a": {"type": "int", "low": 1, "high": 9}, "b": ["x", "y"]})
    assert len(corners(searched)) == 4
    assert describe(
        {"compile.optimizer": {"type": "SGD", "momentum": 0.9}, "fit.batch_size": 32}
    ) == ("optimizer=SGD(momentum=0.9), batch_size=32")


def _trial(number: int, curve: list[float], status: Status = Status.SUCCEEDED) -> TrialRecord:
    intermediate = {epoch: value for epoch, value in enumerate(curve, start=1)}
    done = status is Status.SUCCEEDED
    return TrialRecord(number, status, {}, intermediate, max(curve) if done else None)


def test_median_pruner_stops_a_trial_below_the_median_only_after_the_startup_trials() -> None:
    pruner = MedianPruning(type="median", n_startup_trials=2, n_warmup_steps=1)
    good = [_trial(0, [0.8, 0.85, 0.9]), _trial(1, [0.7, 0.8, 0.88])]
    bad = _trial(2, [0.1], Status.RUNNING)
    assert (
        prune_reason(pruner, trial=bad, others=good[:1], maximise=True, metric="val_accuracy")
        is None
    )
    reason = prune_reason(pruner, trial=bad, others=good, maximise=True, metric="val_accuracy")
    assert reason is not None
    assert reason.startswith("pruned at epoch 1")
    best = _trial(2, [0.95], Status.RUNNING)
    assert (
        prune_reason(pruner, trial=best, others=good, maximise=True, metric="val_accuracy") is None
    )


def test_median_pruner_waits_for_the_warmup() -> None:
    pruner = MedianPruning(type="median", n_startup_trials=1, n_warmup_steps=2)
    others = [_trial(0, [0.8, 0.85, 0.9])]
    assert (
        prune_reason(
            pruner,
            trial=_trial(1, [0.1], Status.RUNNING),
            others=others,
            maximise=True,
            metric="val_accuracy",
        )
        is None
    )
    assert prune_reason(
        pruner,
        trial=_trial(1, [0.1, 0.1], Status.RUNNING),
        others=others,
        maximise=True,
        metric="val_accuracy",
    )


def test_successive_halving_keeps_the_top_fraction_at_each_rung() -> None:
    pruner = SuccessiveHalving(type="successive_halving", min_resource=1, reduction_factor=2)
    others = [_trial(0, [0.9, 0.92]), _trial(1, [0.8, 0.85]), _trial(2, [0.7, 0.75])]
    worst = _trial(3, [0.2], Status.RUNNING)
    reason = prune_reason(pruner, trial=worst, others=others, maximise=True, metric="val_accuracy")
    assert reason is not None
    assert "successive halving" in reason
    best = _trial(3, [0.95], Status.RUNNING)
    assert (
        prune_reason(pruner, trial=best, others=others, maximise=True, metric="val_accuracy")
        is None
    )
