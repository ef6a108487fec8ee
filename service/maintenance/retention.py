"""What the model store can give back, and giving it back (`python -m service gc`).

Three kinds of files are reclaimable:
- an experiment's folder whose row is gone (a delete that could not reach the store);
- checkpoints left beside a succeeded experiment's model (the training removes them itself;
  a crash between its last two steps can leave them);
- with RETENTION_DAYS, the files of failed, cancelled and pruned experiments that finished that
  long ago. Their rows, histories and scores stay; they are marked as having no model.
A model an alias points to is never removed. A plan is computed first and applied only when
asked: the default is a dry run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.db import upkeep
from service.db.session import Database
from service.domain import Status
from service.storage import ModelStore, checkpoint_prefix, experiment_prefix

log = logging.getLogger(__name__)

ORPHANED = "orphaned"
LEFTOVER_CHECKPOINTS = "leftover checkpoints"
RETENTION = "retention"


@dataclass(frozen=True)
class Reclaimable:
    prefix: str
    """The store folder to remove."""
    bytes: int
    reason: str
    experiment_id: str
    forget_model: bool
    """True when the experiment's row must be marked as having no model once its files go."""


@dataclass(frozen=True)
class GcPlan:
    items: tuple[Reclaimable, ...]
    retention_days: float | None

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.items)


def _sizes_by_experiment(files: dict[str, int]) -> dict[str, dict[str, int]]:
    """Store files grouped by the experiment folder they are in: id -> {key: size}."""
    grouped: dict[str, dict[str, int]] = {}
    for key, size in files.items():
        parts = key.split("/")
        if len(parts) >= 3 and parts[0] == "experiments":
            grouped.setdefault(parts[1], {})[key] = size
    return grouped


def plan(*, db: Database, store: ModelStore, retention_days: float | None, now: datetime) -> GcPlan:
    """What a gc would remove now, and why; nothing is changed."""
    by_experiment = _sizes_by_experiment(store.files("experiments"))
    with db.scope() as session:
        statuses = upkeep.statuses(session, by_experiment)
        expired = (
            upkeep.discardable_before(session, now - timedelta(days=retention_days))
            if retention_days is not None
            else []
        )
    items: list[Reclaimable] = []
    for experiment_id, files in sorted(by_experiment.items()):
        status = statuses.get(experiment_id)
        if status is None:
            items.append(
                Reclaimable(
                    experiment_prefix(experiment_id),
                    sum(files.values()),
                    ORPHANED,
                    experiment_id,
                    forget_model=False,
                )
            )
        elif status is Status.SUCCEEDED:
            checkpoints = checkpoint_prefix(experiment_id) + "/"
            left = sum(size for key, size in files.items() if key.startswith(checkpoints))
            if left:
                items.append(
                    Reclaimable(
                        checkpoint_prefix(experiment_id),
                        left,
                        LEFTOVER_CHECKPOINTS,
                        experiment_id,
                        forget_model=False,
                    )
                )
    for stored in expired:
        files = by_experiment.get(stored.experiment_id, {})
        if files or stored.model_key is not None:
            items.append(
                Reclaimable(
                    experiment_prefix(stored.experiment_id),
                    sum(files.values()),
                    RETENTION,
                    stored.experiment_id,
                    forget_model=stored.model_key is not None,
                )
            )
    return GcPlan(tuple(items), retention_days)


def apply(plan_: GcPlan, *, db: Database, store: ModelStore) -> int:
    """Remove what the plan lists; returns the bytes freed. Rows are marked before their files
    go: a crash in between leaves files a later gc finds again, never a row naming a lost model.
    """
    forget = [item.experiment_id for item in plan_.items if item.forget_model]
    if forget:
        with db.scope() as session:
            upkeep.forget_models(session, forget)
    for item in plan_.items:
        store.delete_prefix(item.prefix)
        log.info("gc: removed %s (%s, %d bytes)", item.prefix, item.reason, item.bytes)
    return plan_.bytes
