"""`python -m service backup DEST` and `restore SRC`: a consistent copy of a running service.

A snapshot is a folder:
    manifest.json   what it holds: the service's version, the schema revision, rows per table,
                    and every file's size and sha256
    service.db      the SQLite database, copied through SQLite's online backup API (a file copy
                    of a live database can catch a half-written page); absent for PostgreSQL,
                    whose own tool (pg_dump) makes the consistent copy
    models/         the model store's files, by key

The database is copied before the store: a model finished in between is an extra file, never
a row naming a missing one. A model deleted in between is listed in the manifest as missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from service import __version__
from service.config import Settings
from service.db import upkeep
from service.db.migrations import current_revision, upgrade_to_head
from service.db.session import Database, copy_sqlite, make_engine
from service.errors import RestoreTargetNotEmpty, SnapshotError
from service.storage import ModelStore

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DATABASE_FILE = "service.db"
MODELS_FOLDER = "models"
FORMAT = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Snapshot:
    folder: Path
    manifest: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _facts(database_url: str) -> tuple[str | None, dict[str, int], list[str]]:
    """A database's revision, rows per table and model keys, read through a fresh engine."""
    db = Database(database_url)
    try:
        revision = current_revision(db.engine)
        with db.scope() as session:
            counts = upkeep.row_counts(session)
            keys = upkeep.model_keys(session)
    finally:
        db.dispose()
    return revision, counts, keys


def _empty_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SnapshotError(f"{folder} is not an empty folder: back up into a new one")
    folder.mkdir(parents=True, exist_ok=True)


def backup(settings: Settings, store: ModelStore, destination: Path) -> Snapshot:
    """Write a snapshot of the database and the model store into `destination` (new or empty).

    It is written into a hidden sibling folder and renamed into place once whole, so a backup
    that fails part-way (a full disk, a store error) leaves nothing behind to refuse a retry,
    and a folder named like a backup always is one."""
    _empty_folder(destination)
    partial = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # what an interrupted earlier run left
    partial.mkdir()
    try:
        manifest = _write_snapshot(settings, store, partial, destination)
        partial.replace(destination)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Snapshot(destination, manifest)


def _write_snapshot(
    settings: Settings, store: ModelStore, folder: Path, destination: Path
) -> dict[str, Any]:
    database_path = upkeep.sqlite_path(settings.database_url)
    database: dict[str, Any]
    if database_path is not None:
        copy = folder / DATABASE_FILE
        copy_sqlite(database_path, copy)
        revision, counts, model_keys = _facts(f"sqlite:///{copy}")
        database = {
            "kind": "sqlite",
            "file": DATABASE_FILE,
            "bytes": copy.stat().st_size,
            "sha256": _sha256(copy),
        }
    else:
        revision, counts, model_keys = _facts(settings.database_url)
        database = {"kind": "postgresql", "file": None}
        log.warning(
            "backup: the database is PostgreSQL, which this command does not copy; take its "
            "snapshot with pg_dump (pg_dump --format=custom --file %s/database.dump DBNAME)",
            destination,
        )
    files = _copy_store(store, folder / MODELS_FOLDER)
    missing = sorted(key for key in set(model_keys) if store.stored_key(key) not in files)
    manifest = {
        "format": FORMAT,
        "service_version": __version__,
        "created_at": datetime.now(UTC).isoformat(),
        "revision": revision,
        "database": database,
        "counts": counts,
        "store": {"url": store.url, "files": files},
        "missing_models": missing,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    log.info(
        "backup: %s rows in %d tables and %d store files (%d bytes) in %s",
        sum(counts.values()),
        len(counts),
        len(files),
        sum(entry["bytes"] for entry in files.values()),
        destination,
    )
    return manifest


def _copy_store(store: ModelStore, folder: Path) -> dict[str, dict[str, Any]]:
    copied: dict[str, dict[str, Any]] = {}
    for key in sorted(store.files()):
        local = folder / key
        try:
            store.get_file(key, local)
        except FileNotFoundError:  # removed since it was listed: a finished training's checkpoint
            log.info("backup: %s went away while copying; skipped", key)
            continue
        copied[key] = {"bytes": local.stat().st_size, "sha256": _sha256(local)}
    return copied


def read_snapshot(folder: Path) -> Snapshot:
    """The snapshot in `folder`, every file checked against its manifest before anything is
    written: a damaged backup is refused whole, never half restored."""
    manifest_path = folder / MANIFEST
    if not folder.is_dir():  # a relative path read from another folder, most often
        raise SnapshotError(f"there is no folder {folder} (from {Path.cwd()})")
    if not manifest_path.is_file():
        raise SnapshotError(f"{folder} holds no {MANIFEST}: it is not a backup of this service")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise SnapshotError(f"{folder}: unknown snapshot format {manifest.get('format')!r}")
    expected: dict[Path, str] = {
        folder / MODELS_FOLDER / key: entry["sha256"]
        for key, entry in manifest["store"]["files"].items()
    }
    if manifest["database"]["file"]:
        expected[folder / manifest["database"]["file"]] = manifest["database"]["sha256"]
    for path, digest in expected.items():
        if not path.is_file():
            raise SnapshotError(f"{path} is listed in the manifest but missing")
        if _sha256(path) != digest:
            raise SnapshotError(f"{path} does not match its checksum: the backup is damaged")
    return Snapshot(folder, manifest)


def _holds_work(database_url: str) -> bool:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            if not engine.dialect.has_table(connection, "experiments"):
                return False
            return connection.execute(text("SELECT 1 FROM experiments LIMIT 1")).first() is not None
    finally:
        engine.dispose()


def restore(settings: Settings, store: ModelStore, source: Path, *, force: bool = False) -> str:
    """Restore a snapshot into this service's (empty) database and store, then migrate it to
    head. Returns the revision it ends at."""
    snapshot = read_snapshot(source)
    database = snapshot.manifest["database"]
    target_path = upkeep.sqlite_path(settings.database_url)
    if database["kind"] == "sqlite" and target_path is None:
        raise SnapshotError(
            "the snapshot's database is SQLite and DATABASE_URL is not a SQLite file; restore "
            "into SQLite, or move the data with a migration tool of your choice"
        )
    if not force:
        if _holds_work(settings.database_url):
            raise RestoreTargetNotEmpty(
                f"the database at {settings.database_url} already holds experiments; restore "
                "into an empty one, or pass --force to replace it"
            )
        if store.files():
            raise RestoreTargetNotEmpty(
                f"the model store {store.url} is not empty; restore into an empty one, or pass "
                "--force to add the snapshot's files over it"
            )
    if database["kind"] == "sqlite":
        assert target_path is not None
        target_path.parent.mkdir(parents=True, exist_ok=True)
        copy_sqlite(source / database["file"], target_path)
    else:
        log.warning(
            "restore: the snapshot came from PostgreSQL; restore its database with pg_restore "
            "first (pg_restore --clean --dbname DBNAME %s/database.dump); copying the store only",
            source,
        )
    for key in snapshot.manifest["store"]["files"]:
        store.put_file(source / MODELS_FOLDER / key, key)
    db = Database(settings.database_url)
    try:
        head = upgrade_to_head(settings.database_url, db.engine)
    finally:
        db.dispose()
    log.info(
        "restore: %d store files and the database from %s (revision %s, now %s)",
        len(snapshot.manifest["store"]["files"]),
        source,
        snapshot.manifest["revision"],
        head,
    )
    return head
