"""A study's definition and plan: typed once where they are read, stored as the same JSON."""

from __future__ import annotations

from service.domain import PlannedTrial, StudyDefinition

STORED = {
    "preset": None,
    "sampler": "tpe",
    "n_trials": 6,
    "max_parallel": 2,
    "objective": "val_loss",
    "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    "seed": 7,
    "base": {"layers": [{"type": "Flatten"}], "compile": {"optimizer": "adam"}, "fit": {}},
    "space": {"fit.batch_size": [32, 64]},
    "max_attempts": 3,
}


def test_a_definition_reads_and_writes_the_stored_json_unchanged() -> None:
    definition = StudyDefinition.from_json(STORED)
    assert (definition.sampler, definition.objective, definition.n_trials) == ("tpe", "val_loss", 6)
    assert definition.pruner == STORED["pruner"]
    assert definition.as_json() == STORED


def test_a_planned_trial_reads_and_writes_the_stored_json_unchanged() -> None:
    stored = {"params": {"fit.batch_size": 32}, "label": "batch 32", "summary": None}
    trial = PlannedTrial.from_json(stored)
    assert trial.label == "batch 32"
    assert trial.as_json() == stored
