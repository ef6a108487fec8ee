"""The pruning check a study's trial makes at each epoch end, from our rows.

Called from the training process; a lone experiment (or a study without a pruner) pays one
small query per epoch and never imports Optuna.
"""

from __future__ import annotations

from service.db import repository
from service.db import studies as store
from service.db.session import Database
from service.domain import EpochRecord


def prune_reason(db: Database, experiment_id: str, history: list[EpochRecord]) -> str | None:
    """Why this trial should stop now (it then ends `pruned`), or None to go on."""
    with db.scope() as session:
        study_id = store.study_of(session, experiment_id)
        if study_id is None:
            return None
        study = store.get_study(session, study_id)
        if not study.definition.pruner:
            return None
        trials = store.trials(session, study_id)
        histories = repository.histories(session, [trial.id for trial in trials])
    from pydantic import TypeAdapter

    from service.studies import pruning  # Optuna, only for trials that can be pruned
    from service.studies.objective import maximises
    from service.studies.rebuild import trial_records

    objective = study.definition.objective
    histories[experiment_id] = history  # what this process knows is newest
    records = trial_records(trials, histories, objective)
    this = next(r for r, t in zip(records, trials, strict=True) if t.id == experiment_id)
    return pruning.prune_reason(
        TypeAdapter(pruning.Pruner).validate_python(study.definition.pruner),
        trial=this,
        others=[r for r in records if r is not this],
        maximise=maximises(objective),
        metric=objective,
    )
