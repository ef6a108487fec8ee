"""`python -m service backup` while a training runs, `restore` elsewhere: every row and every
model file comes back exactly, and the restored copy predicts as the original did."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from alembic import command
from service.api.app import create_app
from service.config import Settings
from service.db.migrations import alembic_config
from service.maintenance.snapshot import backup
from service.storage import ModelStore
from tests.factories import dense_spec, tiny_spec
from tests.helpers import REPO, ServiceProcess, free_port, settings_env, wait_finished, wait_for

DIGIT = [[0.0] * 28 for _ in range(28)]
for row in range(6, 22):
    DIGIT[row][14] = 1.0  # a stroke: a "1"


def _cli(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=settings_env(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


def _rows(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    connection = sqlite3.connect(database)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            table: sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
            for table in tables
        }
    finally:
        connection.close()


def _checksums(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _sqlite_file(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def _on_sqlite(make_settings: Callable[..., Settings], folder: Path, **overrides: Any) -> Settings:
    """SQLite and its queue in `folder` (also in the scaled run: this command copies SQLite;
    PostgreSQL is backed up with pg_dump)."""
    folder.mkdir(parents=True, exist_ok=True)
    return make_settings(
        database_url=f"sqlite:///{folder / 'service.db'}",
        queue_url=f"sqlite:///{folder / 'queue.db'}",
        models_dir=str(folder / "models"),
        **overrides,
    )


def test_a_backup_taken_mid_training_restores_exactly(
    make_settings: Callable[..., Settings],
    start_service: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    original = _on_sqlite(make_settings, tmp_path / "original", port=free_port())
    service = start_service(original)
    with httpx.Client(base_url=f"http://127.0.0.1:{original.port}", timeout=60) as http:
        wait_for(lambda: _healthy(http), timeout=120, interval=0.2, what="/health")
        trained = http.post("/experiments", json=tiny_spec()).json()["id"]
        assert wait_finished(http, trained, timeout=240)["status"] == "succeeded"
        assert http.put("/models/first", json={"experiment_id": trained}).status_code == 200
        running = http.post("/experiments", json=dense_spec(epochs=40, train_size=12000)).json()
        wait_for(
            lambda: len(http.get(f"/experiments/{running['id']}/history").json()["epochs"]) >= 1,
            timeout=240,
            interval=0.2,
            what="the second training's first epoch",
        )
        snapshot = tmp_path / "snapshot"
        printed = _cli(original, "backup", str(snapshot)).stdout
        assert f"backup in {snapshot}" in printed
        still_running = http.get(f"/experiments/{running['id']}").json()["status"]
        live = http.post("/predict", json={"model": "first", "images": [DIGIT]}).json()
        http.post(f"/experiments/{running['id']}/cancel")
    service.stop()
    assert still_running == "running", "the backup must be taken while a training runs"

    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["counts"]["experiments"] == 2
    assert manifest["counts"]["epochs"] >= 3
    assert manifest["counts"]["model_aliases"] == 1
    assert f"experiments/{trained}/model.keras" in manifest["store"]["files"]
    assert manifest["missing_models"] == []

    restored = _on_sqlite(make_settings, tmp_path / "restored")
    printed = _cli(restored, "restore", str(snapshot)).stdout
    assert "the database is at revision" in printed
    # Every row of every table, and every model file, exactly as in the snapshot.
    assert _rows(_sqlite_file(restored)) == _rows(snapshot / "service.db")
    assert _checksums(Path(restored.models_dir)) == {
        key: entry["sha256"] for key, entry in manifest["store"]["files"].items()
    }
    with TestClient(create_app(restored)) as client:
        answer = client.post("/predict", json={"model": "first", "images": [DIGIT]}).json()
        assert client.get(f"/experiments/{trained}/history").json()["epochs"]
    assert answer["predictions"] == live["predictions"]

    # A second restore over the work just restored is refused, and says how to force it.
    again = _cli(restored, "restore", str(snapshot), check=False)
    assert again.returncode == 2
    assert "already holds experiments" in again.stderr
    assert "--force" in again.stderr


def _healthy(http: httpx.Client) -> bool:
    try:
        return http.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def test_a_damaged_snapshot_is_refused_before_anything_is_written(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    source = _on_sqlite(make_settings, tmp_path / "source")
    _cli(source, "migrate")
    snapshot = tmp_path / "snapshot"
    _cli(source, "backup", str(snapshot))
    database = snapshot / "service.db"
    damaged = bytearray(database.read_bytes())
    damaged[100] ^= 0xFF  # one bit flip in the header, as a bad disk sector would
    database.write_bytes(bytes(damaged))
    target = _on_sqlite(make_settings, tmp_path / "target")
    refused = _cli(target, "restore", str(snapshot), check=False)
    assert refused.returncode == 2
    assert "does not match its checksum" in refused.stderr
    assert not (tmp_path / "target" / "service.db").exists()
    missing = _cli(target, "restore", str(tmp_path / "no-such-backup"), check=False)
    assert f"there is no folder {tmp_path / 'no-such-backup'}" in missing.stderr

    not_empty = tmp_path / "not-empty"
    not_empty.mkdir()
    (not_empty / "x").write_text("x")
    assert "not an empty folder" in _cli(source, "backup", str(not_empty), check=False).stderr


def test_an_older_snapshot_is_migrated_to_head_on_restore(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    source = _on_sqlite(make_settings, tmp_path / "source")
    config = alembic_config(source.database_url)
    scripts = ScriptDirectory.from_config(config)
    head = scripts.get_current_head()
    first = next(iter(scripts.walk_revisions(base="base", head=head)))  # newest first
    older = first.down_revision
    assert isinstance(older, str)
    command.upgrade(config, older)
    snapshot = tmp_path / "snapshot"
    _cli(source, "backup", str(snapshot))
    assert json.loads((snapshot / "manifest.json").read_text())["revision"] == older
    target = _on_sqlite(make_settings, tmp_path / "target")
    assert f"the database is at revision {head}" in _cli(target, "restore", str(snapshot)).stdout


def test_a_fresh_clones_store_backs_up_and_restores_into_another(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A clone's models_store/ holds the repository's `.gitkeep`: no key, not the service's.
    Backup leaves it out rather than refusing it, and restore does not count it as work."""
    source = _on_sqlite(make_settings, tmp_path / "source")
    (tmp_path / "source" / "models").mkdir()
    (tmp_path / "source" / "models" / ".gitkeep").touch()
    _cli(source, "migrate")
    snapshot = tmp_path / "snapshot"
    _cli(source, "backup", str(snapshot))
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["store"]["files"] == {}
    target = _on_sqlite(make_settings, tmp_path / "target")
    (tmp_path / "target" / "models").mkdir()
    (tmp_path / "target" / "models" / ".gitkeep").touch()
    assert "the database is at revision" in _cli(target, "restore", str(snapshot)).stdout


def test_backup_and_gc_refuse_a_database_that_is_not_there(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Run from another folder, the default relative SQLite file is not the service's: the
    commands say so (exit 2) and create no empty database in its place."""
    elsewhere = _on_sqlite(make_settings, tmp_path / "elsewhere")
    for args in (("backup", str(tmp_path / "snapshot")), ("gc",)):
        refused = _cli(elsewhere, *args, check=False)
        assert refused.returncode == 2, refused.stderr
        assert "there is no database at" in refused.stderr
        assert "set DATABASE_URL" in refused.stderr
    assert not (tmp_path / "elsewhere" / "service.db").exists()
    assert not (tmp_path / "snapshot").exists()
    empty = tmp_path / "elsewhere" / "service.db"
    sqlite3.connect(empty).close()  # a file, no tables
    assert "holds no schema" in _cli(elsewhere, "gc", check=False).stderr


class _FailingStore(ModelStore):
    """A store whose copy fails part-way, as a full disk or a lost bucket would."""

    def get_file(self, key: str, local_path: str | Path) -> Path:
        raise OSError(28, "No space left on device")


def test_a_backup_that_fails_part_way_leaves_nothing_and_a_retry_succeeds(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = _on_sqlite(make_settings, tmp_path / "source")
    _cli(settings, "migrate")
    (tmp_path / "source" / "models" / "experiments" / "e1").mkdir(parents=True)
    (tmp_path / "source" / "models" / "experiments" / "e1" / "model.keras").write_bytes(b"m")
    destination = tmp_path / "snapshot"
    with pytest.raises(OSError, match="No space left"):
        backup(settings, _FailingStore(settings.model_store_url), destination)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["snapshot", "source"]
    assert list(destination.iterdir()) == []  # no half a backup, no partial folder beside it

    snapshot = backup(settings, ModelStore(settings.model_store_url), destination)
    assert (destination / "manifest.json").is_file()
    assert list(snapshot.manifest["store"]["files"]) == ["experiments/e1/model.keras"]
