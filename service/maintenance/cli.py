"""The operator's subcommands of `python -m service`: backup, restore and gc.

Each prints what it did for a person and exits 0, or prints the refusal and exits 2 (a wrong
folder, a damaged snapshot, a non-empty target): nothing half done.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.config import Settings
from service.errors import ServiceError

log = logging.getLogger("service")

COMMANDS = frozenset({"backup", "restore", "gc"})
REFUSED = 2


def add_commands(commands: Any, add_flags: Callable[[argparse.ArgumentParser, str], None]) -> None:
    """Add backup, restore and gc to `python -m service`'s subcommands."""
    backup = commands.add_parser(
        "backup", help="write a consistent snapshot of the database and the model store"
    )
    backup.add_argument("destination", type=Path, help="a new (or empty) folder")
    restore = commands.add_parser(
        "restore", help="restore a snapshot into an empty database and store, then migrate"
    )
    restore.add_argument("source", type=Path, help="a folder written by `backup`")
    restore.add_argument(
        "--force", action="store_true", help="replace a database or store that holds work"
    )
    gc = commands.add_parser(
        "gc", help="show (or with --apply, remove) the store files retention can reclaim"
    )
    gc.add_argument("--apply", action="store_true", help="remove them; without it, a dry run")
    gc.add_argument(
        "--days",
        type=float,
        default=None,
        help="keep failed, cancelled and pruned experiments' files this many days "
        "(default: RETENTION_DAYS; unset keeps them)",
    )
    for command in ("backup", "restore", "gc"):
        add_flags(commands.choices[command], command)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from service.db.session import Database
    from service.storage import store_from_settings

    store = store_from_settings(settings)
    try:
        if args.command in ("backup", "gc"):
            _require_database(settings.database_url)
        if args.command == "backup":
            from service.maintenance.snapshot import backup

            snapshot = backup(settings, store, args.destination)
            _print_backup(snapshot.manifest, args.destination)
        elif args.command == "restore":
            from service.maintenance.snapshot import restore

            head = restore(settings, store, args.source, force=args.force)
            print(f"restored {args.source} into {settings.database_url} and {store.url}")
            print(f"the database is at revision {head}")
        else:
            _gc(args, settings, store, Database(settings.database_url))
    except ServiceError as error:
        print(f"{args.command}: {error.message}", file=sys.stderr)
        return REFUSED
    return 0


def _require_database(database_url: str) -> None:
    """backup and gc read the service's own database. Run from another folder (the default
    SQLite file is relative) they would find none: SQLite would make an empty file, and gc would
    fail on its missing tables. Say so instead, and create nothing."""
    from service.db.migrations import current_revision
    from service.db.session import Database
    from service.db.upkeep import sqlite_path
    from service.errors import DatabaseMissing

    hint = "run this from the service's folder, or set DATABASE_URL to the service's database"
    path = sqlite_path(database_url)
    if path is not None and not path.is_file():
        raise DatabaseMissing(f"there is no database at {database_url}: {hint}")
    db = Database(database_url)
    try:
        revision = current_revision(db.engine)
    finally:
        db.dispose()
    if revision is None:
        raise DatabaseMissing(f"the database at {database_url} holds no schema: {hint}")


def _print_backup(manifest: dict[str, Any], destination: Path) -> None:
    files = manifest["store"]["files"]
    print(f"backup in {destination}: revision {manifest['revision']}")
    print(f"  rows: {', '.join(f'{t} {n}' for t, n in manifest['counts'].items())}")
    print(f"  model store: {len(files)} files, {sum(f['bytes'] for f in files.values()):,} bytes")
    if manifest["database"]["kind"] == "postgresql":
        print(
            "  database: PostgreSQL is not copied by this command; run "
            f"pg_dump --format=custom --file {destination}/database.dump DBNAME"
        )
    if manifest["missing_models"]:
        print(f"  deleted while copying: {', '.join(manifest['missing_models'])}")


def _gc(args: argparse.Namespace, settings: Settings, store: Any, db: Any) -> None:
    from service.maintenance import retention

    days = args.days if args.days is not None else settings.retention_days
    try:
        plan = retention.plan(db=db, store=store, retention_days=days, now=datetime.now(UTC))
        for item in plan.items:
            print(f"{item.bytes:>12,}  {item.prefix}  ({item.reason})")
        policy = f"retention {days:g} days" if days is not None else "no RETENTION_DAYS"
        if not args.apply:
            print(
                f"{len(plan.items)} folders, {plan.bytes:,} bytes reclaimable ({policy}); "
                "nothing removed: run again with --apply to remove them"
            )
            return
        freed = retention.apply(plan, db=db, store=store)
        print(f"removed {len(plan.items)} folders, {freed:,} bytes ({policy})")
    finally:
        db.dispose()
