"""`python -m service`: the API with embedded worker slots; subcommands run one part alone.

python -m service            migrate, then the API and a worker with WORKER_SLOTS slots
python -m service api        the API alone (scale out behind a load balancer)
python -m service worker     a worker alone (any number, on any machine)
python -m service migrate    bring the database to the Alembic head and exit
python -m service backup DEST      a consistent snapshot of the database and the model store
python -m service restore SRC      a snapshot into an empty database and store, then migrate
python -m service gc [--apply]     what retention can reclaim from the store (a dry run unless
                                   --apply)
python -m service docs             build the documentation site and serve it on 127.0.0.1:8001

Flags (`--host`, `--port`, `--workers`, `--slots`, ...) override their environment variables;
`python -m service --help` lists them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from service import __version__, docs_site, logs
from service.config import Settings, get_settings
from service.maintenance import cli as upkeep

log = logging.getLogger("service")

ALL_COMMANDS = frozenset({"all", "api", "worker", "migrate", "backup", "restore", "gc"})
# Needs no settings: it serves the documentation site.
DOCS_COMMAND = "docs"
# Beyond its shutdown grace, how long an embedded worker may take to release its claims.
WORKER_RELEASE_SECONDS = 15.0


@dataclass(frozen=True)
class Flag:
    """A command-line flag that overrides one environment variable (and so one Setting)."""

    name: str
    variable: str
    type: type
    help: str
    commands: frozenset[str]


_SERVER = frozenset({"all", "api"})
_WORKER = frozenset({"all", "worker"})
FLAGS = (
    Flag("--host", "HOST", str, "address the API listens on", _SERVER),
    Flag("--port", "PORT", int, "port the API listens on", _SERVER),
    Flag("--workers", "API_WORKERS", int, "API processes sharing the port", _SERVER),
    Flag("--slots", "WORKER_SLOTS", int, "trainings a worker runs at once", _WORKER),
    Flag("--database-url", "DATABASE_URL", str, "SQLAlchemy URL of the database", ALL_COMMANDS),
    Flag("--queue-url", "QUEUE_URL", str, "sqlite:///FILE or redis://HOST:PORT/DB", ALL_COMMANDS),
    Flag("--access-log", "ACCESS_LOG", bool, "log one line per HTTP request", _SERVER),
)


def _add_flags(parser: argparse.ArgumentParser, command: str) -> None:
    for flag in FLAGS:
        if command in flag.commands:
            # A bool flag is a switch: given, it sets its variable to true.
            kind: dict[str, Any] = (
                {"action": "store_const", "const": "true"}
                if flag.type is bool
                else {"type": flag.type, "metavar": flag.variable}
            )
            parser.add_argument(
                flag.name,
                **kind,
                # SUPPRESS: a flag left out leaves its variable alone, even on the main parser
                # when a subcommand repeats it.
                default=argparse.SUPPRESS,
                help=f"{flag.help} (overrides ${flag.variable})",
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="MNIST lab: train Keras nets defined as JSON; serve digit predictions. "
        "Each flag overrides the environment variable named beside it.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_flags(parser, "all")
    commands = parser.add_subparsers(
        dest="command", metavar="{api,worker,migrate,backup,restore,gc,docs}"
    )
    for command, help_text in (
        ("api", "run the HTTP API without workers"),
        ("worker", "run a worker without the API"),
        ("migrate", "bring the database to the latest schema and exit"),
    ):
        _add_flags(commands.add_parser(command, help=help_text), command)
    upkeep.add_commands(commands, _add_flags)
    docs_site.add_command(commands)
    return parser


def apply_flags(args: argparse.Namespace, environ: MutableMapping[str, str]) -> None:
    """Write each given flag into its environment variable, where Settings (in this process
    and in every child it starts) read it."""
    for flag in FLAGS:
        value = getattr(args, flag.name.removeprefix("--").replace("-", "_"), None)
        if value is not None:
            environ[flag.variable] = str(value)


def migrate(settings: Settings) -> None:
    from service.db.migrations import upgrade_to_head
    from service.db.session import Database

    db = Database(settings.database_url)
    try:
        head = upgrade_to_head(settings.database_url, db.engine)
    finally:
        db.dispose()
    log.info("database is at revision %s", head)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for one API process or several, from the settings.

    uvicorn trusts `X-Forwarded-For` from 127.0.0.1 unless told otherwise, and the per-client
    queue cap is keyed on the address it derives: any local process (or a proxy in front that
    passes the header on unchecked) could name a fresh client per request. Forwarding headers
    are honoured only from the proxies FORWARDED_ALLOW_IPS names, and not at all by default.
    """
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": logs.uvicorn_config(
            access_log=settings.access_log, log_format=settings.log_format
        ),
        "access_log": settings.access_log,
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": settings.forwarded_allow_ips or None,
    }


def serve_api(settings: Settings) -> None:
    import uvicorn

    from service.api.app import create_app, tune_server_process

    log.info(
        "API on http://%s:%s (docs at /docs), %d process(es)",
        settings.host,
        settings.port,
        settings.api_workers,
    )
    if settings.api_workers > 1:
        from service.metrics import prepare_multiprocess_dir

        # Each process builds its own app from the same environment, and counts into files
        # in one directory that any of them sums when scraped.
        prepare_multiprocess_dir(os.environ)
        uvicorn.run(
            "service.api.app:app_from_environment",
            factory=True,
            workers=settings.api_workers,
            **server_options(settings),
        )
        return
    app = create_app(settings, migrate=False)
    tune_server_process(settings)
    uvicorn.run(app, **server_options(settings))


def run_worker(settings: Settings) -> None:
    from service.worker.consumer import run_worker as consume

    consume(settings)


def run_all(settings: Settings) -> None:
    """Workers run in their own interpreter: TensorFlow state must never be forked."""
    from service.worker.lifeline import FORWARDED_STOP_SIGNAL, GROUP_STOP_SIGNALS, child_env

    worker = subprocess.Popen([sys.executable, "-m", "service", "worker"], env=child_env())
    forwarded = 0

    def forward(*_: object) -> None:
        # The worker drains: its trainings finish their epoch and release their claims. It
        # tells this forwarded request from the same signal sent to the whole group.
        nonlocal forwarded
        forwarded += 1
        log.info("stopping the embedded worker")
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(FORWARDED_STOP_SIGNAL)

    # uvicorn raises each SIGINT and SIGTERM it caught again once it has shut down: this
    # handler passes them on (instead of a KeyboardInterrupt, or dying at once), and any that
    # come while the worker drains.
    for signum in GROUP_STOP_SIGNALS:
        signal.signal(signum, forward)
    try:
        serve_api(settings)
    finally:
        if not forwarded:  # the server stopped for another reason
            forward()
        try:
            worker.wait(timeout=settings.shutdown_grace_seconds + WORKER_RELEASE_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == DOCS_COMMAND:
        return docs_site.run(args)
    apply_flags(args, os.environ)
    get_settings.cache_clear()
    settings = get_settings()
    logs.configure(log_format=settings.log_format)
    if args.command == "worker":
        run_worker(settings)
        return 0
    if args.command in upkeep.COMMANDS:
        return upkeep.run(args, settings)
    migrate(settings)
    if args.command == "migrate":
        return 0
    from service.worker.quiet import QuietStderr

    with QuietStderr():  # the API's dry runs load TensorFlow too
        if args.command == "api":
            serve_api(settings)
        else:
            run_all(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
