"""`python -m service`: the API with embedded worker slots; subcommands run one part alone.

python -m service            migrate, then the API and a worker with WORKER_SLOTS slots
python -m service api        the API alone (scale out behind a load balancer)
python -m service worker     a worker alone (any number, on any machine)
python -m service migrate    bring the database to the Alembic head and exit
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys

from service.config import Settings, get_settings

log = logging.getLogger("service")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="MNIST lab: train Keras nets defined as JSON; serve digit predictions.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{api,worker,migrate}")
    commands.add_parser("api", help="run the HTTP API without workers")
    commands.add_parser("worker", help="run a worker without the API")
    commands.add_parser("migrate", help="bring the database to the latest schema and exit")
    return parser


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s [%(name)s %(process)d] %(message)s",
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Alembic announces each of its plugins at INFO; the migrations it runs stay visible.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def migrate(settings: Settings) -> None:
    from service.db.migrations import upgrade_to_head
    from service.db.session import Database

    db = Database(settings.database_url)
    try:
        head = upgrade_to_head(settings.database_url, db.engine)
    finally:
        db.dispose()
    log.info("database is at revision %s", head)


def serve_api(settings: Settings) -> None:
    import uvicorn

    from service.api.app import create_app

    log.info("API on http://%s:%s (docs at /docs)", settings.host, settings.port)
    uvicorn.run(
        create_app(settings, migrate=False),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
    )


def run_worker(settings: Settings) -> None:
    from service.worker.consumer import run_worker as consume

    consume(settings)


def run_all(settings: Settings) -> None:
    """Workers run in their own interpreter: TensorFlow state must never be forked."""
    from service.worker.lifeline import child_env

    worker = subprocess.Popen([sys.executable, "-m", "service", "worker"], env=child_env())
    try:
        serve_api(settings)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _logging()
    settings = get_settings()
    if args.command == "worker":
        run_worker(settings)
        return 0
    migrate(settings)
    if args.command == "migrate":
        return 0
    if args.command == "api":
        serve_api(settings)
    else:
        run_all(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
