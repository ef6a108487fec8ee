"""Retention and `python -m service gc`: what the store can give back, never an aliased model,
a dry run by default, rows kept and marked as having no model."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import text

from service.maintenance import retention
from service.storage import checkpoint_key, model_key
from tests.helpers import (
    REPO,
    fail,
    publish,
    put_alias,
    runtime_of,
    save_untrained_model,
    settings_env,
)

NOW = datetime.now(UTC)


def _age(client: TestClient, experiment_id: str, days: float, status: str | None = None) -> None:
    runtime = runtime_of(client)
    with runtime.db.scope() as session:
        session.execute(
            text("UPDATE experiments SET finished_at = :at WHERE id = :id"),
            {"at": NOW - timedelta(days=days), "id": experiment_id},
        )
        if status is not None:
            session.execute(
                text("UPDATE experiments SET status = :status WHERE id = :id"),
                {"status": status, "id": experiment_id},
            )


def _model_uri(client: TestClient, experiment_id: str) -> str | None:
    with runtime_of(client).db.scope() as session:
        return session.execute(
            text("SELECT model_uri FROM experiments WHERE id = :id"), {"id": experiment_id}
        ).scalar_one()


def _checkpoint(client: TestClient, experiment_id: str, model: Path) -> str:
    return runtime_of(client).store.put_file(model, checkpoint_key(experiment_id, 1, 1))


def test_gc_plans_by_policy_and_applies_only_when_asked(client: TestClient, tmp_path: Path) -> None:
    runtime = runtime_of(client)
    model = save_untrained_model(tmp_path / "m.keras")
    # A cancelled run with a model (stopped after an epoch), old: retention takes it.
    old_cancelled = publish(client, model, name="old-cancelled")
    _age(client, old_cancelled, days=40, status="cancelled")
    # The same, but an alias names it: never removed (aliased while it could serve).
    aliased = publish(client, model, name="aliased")
    put_alias(client, "keep-me", aliased)
    _age(client, aliased, days=40, status="pruned")
    # A failed run with checkpoints, old.
    old_failed = fail(client, "old-failed")
    _checkpoint(client, old_failed, model)
    _age(client, old_failed, days=40)
    # A failed run, recent: kept under a 30-day policy.
    recent_failed = fail(client, "recent-failed")
    _checkpoint(client, recent_failed, model)
    _age(client, recent_failed, days=2)
    # A succeeded run whose checkpoints were left behind.
    succeeded = publish(client, model, name="succeeded")
    _checkpoint(client, succeeded, model)
    # Files of an experiment whose row is gone.
    runtime.store.put_file(model, model_key("0" * 32))

    plan = retention.plan(db=runtime.db, store=runtime.store, retention_days=30, now=NOW)
    reasons = {item.prefix: item.reason for item in plan.items}
    assert reasons == {
        f"experiments/{old_cancelled}": retention.RETENTION,
        f"experiments/{old_failed}": retention.RETENTION,
        f"experiments/{succeeded}/checkpoint": retention.LEFTOVER_CHECKPOINTS,
        f"experiments/{'0' * 32}": retention.ORPHANED,
    }
    assert plan.bytes == sum(item.bytes for item in plan.items) > 0

    without_policy = retention.plan(
        db=runtime.db, store=runtime.store, retention_days=None, now=NOW
    )
    assert {item.reason for item in without_policy.items} == {
        retention.LEFTOVER_CHECKPOINTS,
        retention.ORPHANED,
    }

    before = runtime.store.files()
    freed = retention.apply(plan, db=runtime.db, store=runtime.store)
    after = runtime.store.files()
    assert freed == sum(size for key, size in before.items() if key not in after)
    assert not any(key.startswith(f"experiments/{old_cancelled}/") for key in after)
    assert model_key(aliased) in after
    assert model_key(succeeded) in after
    assert not any(key.startswith(f"experiments/{succeeded}/checkpoint") for key in after)
    assert any(key.startswith(f"experiments/{recent_failed}/") for key in after)
    # Rows stay, marked as having no model; the aliased one still serves.
    assert _model_uri(client, old_cancelled) is None
    assert client.get(f"/experiments/{old_cancelled}").status_code == 200
    assert _model_uri(client, aliased) == model_key(aliased)
    # Applied, nothing is left to reclaim.
    assert (
        retention.plan(db=runtime.db, store=runtime.store, retention_days=30, now=NOW).items == ()
    )


def test_the_command_is_a_dry_run_unless_told(client: TestClient, tmp_path: Path) -> None:
    runtime = runtime_of(client)
    runtime.store.put_file(save_untrained_model(tmp_path / "m.keras"), model_key("1" * 32))
    env = settings_env(runtime.settings)

    def gc(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "service", "gc", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout

    dry = gc()
    assert f"experiments/{'1' * 32}  (orphaned)" in dry
    assert "nothing removed: run again with --apply" in dry
    assert model_key("1" * 32) in runtime.store.files()
    applied = gc("--apply", "--days", "30")
    assert "removed 1 folders" in applied
    assert runtime.store.files() == {}
