"""Whether a trial should stop at the end of an epoch, judged against the study's other trials.

Pure: the caller reads the trials from our database; the verdict is Optuna's own pruner run on
an in-memory study rebuilt from them (steps are epochs, counted from 1).
"""

from __future__ import annotations

from typing import Annotated, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field

from service.studies.rebuild import TrialRecord, in_memory_study


class _Pruner(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MedianPruning(_Pruner):
    """Optuna's MedianPruner: stop a trial whose best value so far is worse than the median of
    the succeeded trials' values at the same epoch."""

    type: Literal["median"]
    n_startup_trials: int = Field(
        default=2, ge=0, le=1000, description="succeeded trials needed before any pruning"
    )
    n_warmup_steps: int = Field(
        default=1, ge=0, le=1000, description="no pruning before this epoch (1 = from the first)"
    )


class SuccessiveHalving(_Pruner):
    """Optuna's SuccessiveHalvingPruner: at epochs min_resource * reduction_factor**k, only the
    top 1/reduction_factor of the trials that reached that epoch go on."""

    type: Literal["successive_halving"]
    min_resource: int = Field(default=1, ge=1, le=1000)
    reduction_factor: int = Field(default=3, ge=2, le=100)
    min_early_stopping_rate: int = Field(default=0, ge=0, le=100)


Pruner = Annotated[MedianPruning | SuccessiveHalving, Field(discriminator="type")]


def _optuna_pruner(pruner: MedianPruning | SuccessiveHalving) -> optuna.pruners.BasePruner:
    if isinstance(pruner, MedianPruning):
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruner.n_startup_trials, n_warmup_steps=pruner.n_warmup_steps
        )
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=pruner.min_resource,
        reduction_factor=pruner.reduction_factor,
        min_early_stopping_rate=pruner.min_early_stopping_rate,
    )


def _rung_attrs(
    pruner: SuccessiveHalving, intermediate: dict[int, float], *, before: int
) -> dict[str, float]:
    """The rungs a trial has passed (its value at each promotion epoch before `before`), as
    Optuna's successive halving records them on the trial."""
    attrs: dict[str, float] = {}
    rung = 0
    while True:
        step = pruner.min_resource * pruner.reduction_factor ** (
            pruner.min_early_stopping_rate + rung
        )
        if step >= before or step not in intermediate:
            return attrs
        attrs[f"completed_rung_{rung}"] = intermediate[step]
        rung += 1


def prune_reason(
    pruner: MedianPruning | SuccessiveHalving,
    *,
    trial: TrialRecord,
    others: list[TrialRecord],
    maximise: bool,
    metric: str,
) -> str | None:
    """Why `trial` should stop after its latest epoch, or None to let it go on."""
    if not trial.intermediate:
        return None
    epoch = max(trial.intermediate)
    system_attrs: dict[int, dict[str, object]] = {}
    if isinstance(pruner, SuccessiveHalving):
        for other in others:
            system_attrs[other.number] = dict(
                _rung_attrs(
                    pruner, other.intermediate, before=max(other.intermediate, default=0) + 1
                )
            )
        system_attrs[trial.number] = dict(_rung_attrs(pruner, trial.intermediate, before=epoch))
    study = in_memory_study(maximise=maximise, trials=[*others, trial], system_attrs=system_attrs)
    frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == _index(others, trial))
    if not _optuna_pruner(pruner).prune(study, frozen):
        return None
    value = trial.intermediate[epoch]
    if isinstance(pruner, MedianPruning):
        rule = "below" if maximise else "above"
        return (
            f"pruned at epoch {epoch}: its best {metric} so far is {rule} the median of the "
            f"succeeded trials at that epoch (median pruner; this epoch's {metric} {value:.4g})"
        )
    return (
        f"pruned at epoch {epoch}: {metric} {value:.4g} is not in the top "
        f"1/{pruner.reduction_factor} of the trials that reached epoch {epoch} "
        "(successive halving)"
    )


def _index(others: list[TrialRecord], trial: TrialRecord) -> int:
    """The Optuna number of `trial` in the rebuilt study, which numbers trials in order."""
    return sorted([*others, trial], key=lambda t: t.number).index(trial)
