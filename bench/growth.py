"""Reads as the data grows: a term of a class's work seeded into the real schema, then the
latency (p50, p99) of the reads a class makes, over HTTP against a lone API.

Seeds 100,000 experiments of 30 owners (half of them trials of 500 studies of 100), ten epochs
each (1,000,000 epoch rows), an attempt each, 100 tags of 1,000 runs, through the real schema
(an empty database migrated to head, its change-log triggers included) with bulk inserts;
starts `python -m service api` on it; times each read sequentially; prints p50 and p99 per read and
the database's size per 1,000 experiments. With --explain, the query plans of the slowest
reads' statements (EXPLAIN QUERY PLAN on SQLite, EXPLAIN ANALYZE on PostgreSQL).

    python bench/growth.py                              # the full size, SQLite
    python bench/growth.py --experiments 2000 --repeat 20
    python bench/growth.py --keep /tmp/growth.db        # seed once; later runs reuse (and
                                                        # migrate) that file
    python bench/growth.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/growth
    python bench/growth.py --explain

A PostgreSQL database is emptied (schema `public` dropped) and seeded, unless --reuse:

    python bench/growth.py --database-url postgresql+psycopg://... --seed-only
    flock /tmp/bench.lock python bench/growth.py --database-url postgresql+psycopg://... --reuse
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, empty_postgres, free_port, running, service_env, wait
from sqlalchemy import Engine, event, insert, text

from service.db import changes
from service.db.migrations import upgrade_to_head
from service.db.models import (
    AttemptRow,
    EpochRow,
    ExperimentRow,
    ExperimentTagRow,
    PersonRow,
    StudyRow,
)
from service.db.session import Database
from service.spec.experiment import ExperimentSpec

MNIST_PATH = os.environ.get("MNIST_PATH") or str(REPO.parent / "shared" / "data" / "mnist.npz")
TERM_START = datetime(2026, 9, 1, tzinfo=UTC)
TERM_DAYS = 100
OWNERS = 30
TAGS = 100
STATUSES = ("succeeded",) * 17 + ("failed", "cancelled")
ACTIVE = {"queued": 20, "running": 4}  # what a busy afternoon has in flight
CHUNK = 20_000
SPEC = ExperimentSpec.model_validate(
    {
        "layers": [
            {"type": "Flatten"},
            {"type": "Dense", "units": 64, "activation": "relu"},
            {"type": "Dense", "units": 10, "activation": "softmax"},
        ],
        "compile": {
            "optimizer": {"type": "Adam"},
            "loss": "sparse_categorical_crossentropy",
            "metrics": ["accuracy"],
        },
        "fit": {"epochs": 10, "batch_size": 64},
    }
).model_dump(mode="json")
SUMMARY = {
    "layers": [
        {"name": "flatten", "type": "Flatten", "output_shape": [None, 784], "params": 0},
        {"name": "dense", "type": "Dense", "output_shape": [None, 64], "params": 50240},
        {"name": "dense_1", "type": "Dense", "output_shape": [None, 10], "params": 650},
    ],
    "total_params": 50890,
    "trainable_params": 50890,
    "non_trainable_params": 0,
}


@dataclass(frozen=True)
class Sizes:
    experiments: int
    epochs: int  # per experiment
    studies: int
    trials: int  # per study


# Seeding ---------------------------------------------------------------------------------------


def _people() -> list[dict[str, Any]]:
    return [
        {
            "id": f"{number:032x}",
            "name": f"student{number:02d}",
            "role": "student",
            "token_hash": f"{number:064x}",
            "created_at": TERM_START,
        }
        for number in range(OWNERS)
    ]


def _experiments(sizes: Sizes, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Every experiment, oldest first: the studies' trials first in each study's window."""
    seconds = TERM_DAYS * 86_400
    in_study = sizes.studies * sizes.trials
    active = [status for status, count in ACTIVE.items() for _ in range(count)]
    for number in range(sizes.experiments):
        owner = number % OWNERS
        created = TERM_START + timedelta(seconds=seconds * number / sizes.experiments)
        if number >= sizes.experiments - len(active):
            status = active[number - (sizes.experiments - len(active))]
        else:
            status = rng.choice(STATUSES)
        finished = status in ("succeeded", "failed", "cancelled")
        accuracy = round(rng.uniform(0.85, 0.995), 4) if status == "succeeded" else None
        trial = number < in_study
        yield {
            "id": f"{number:08d}{rng.getrandbits(96):024x}",
            "name": f"net {number}",
            "description": None,
            "spec": SPEC,
            "summary": SUMMARY,
            "status": status,
            "client_id": f"person:{owner:032x}",
            "owner_id": f"{owner:032x}",
            "created_at": created,
            "started_at": created + timedelta(seconds=30) if status != "queued" else None,
            "finished_at": created + timedelta(seconds=300) if finished else None,
            "test_loss": round(1 - accuracy, 4) if accuracy else None,
            "test_accuracy": accuracy,
            "error": "diverged" if status == "failed" else None,
            "attempt": 0 if status == "queued" else 1,
            "max_attempts": 3,
            "cancel_requested": False,
            "model_uri": f"experiments/{number}/model.keras" if accuracy else None,
            "spec_hash": f"{number % 500:064x}",
            "seed": number,
            "delivered_at": created,
            "study_id": f"{number // sizes.trials:032x}" if trial else None,
            "trial_number": number % sizes.trials if trial else None,
            "trial_params": {"layers.1.units": 16 * (number % 8 + 1)} if trial else None,
        }


def _epochs(experiment: dict[str, Any], count: int, rng: random.Random) -> list[dict[str, Any]]:
    if experiment["status"] == "queued":
        return []
    done = count if experiment["status"] != "running" else count // 2
    start = experiment["started_at"]
    return [
        {
            "experiment_id": experiment["id"],
            "epoch": epoch,
            "loss": 0.5 / epoch,
            "accuracy": 0.9 + epoch / 200,
            "val_loss": 0.55 / epoch,
            "val_accuracy": 0.88 + epoch / 200 + rng.uniform(0, 0.01),
            "seconds": 2.5,
            "attempt": 1,
            "learning_rate": 0.001,
            "recorded_at": start + timedelta(seconds=25 * epoch),
        }
        for epoch in range(1, done + 1)
    ]


def seed(engine: Engine, sizes: Sizes) -> None:
    """The class's term in bulk inserts (executemany), through the migrated schema."""
    rng = random.Random(24)
    started = time.monotonic()
    with engine.begin() as connection:
        connection.execute(insert(PersonRow), _people())
        studies = [
            {
                "id": f"{number:032x}",
                "name": f"study {number}",
                "client_id": f"person:{number % OWNERS:032x}",
                "owner_id": f"{number % OWNERS:032x}",
                "definition": {
                    "base": SPEC,
                    "space": {"layers.1.units": [16, 32, 64, 128, 256, 512, 1024, 2048]},
                    "sampler": "random",
                    "objective": "val_accuracy",
                    "n_trials": sizes.trials,
                    "max_parallel": 4,
                    "seed": number,
                    "max_attempts": 3,
                },
                "plan": None,
                "status": "finished",
                "advances": sizes.trials,
                "created_at": TERM_START,
            }
            for number in range(sizes.studies)
        ]
        if studies:
            connection.execute(insert(StudyRow), studies)
    batch: list[dict[str, Any]] = []
    for experiment in _experiments(sizes, rng):
        batch.append(experiment)
        if len(batch) * sizes.epochs >= CHUNK * 5 or len(batch) >= CHUNK:
            _insert(engine, batch, sizes, rng)
            batch = []
    _insert(engine, batch, sizes, rng)
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)


def _insert(engine: Engine, batch: list[dict[str, Any]], sizes: Sizes, rng: random.Random) -> None:
    if not batch:
        return
    epochs = [row for experiment in batch for row in _epochs(experiment, sizes.epochs, rng)]
    tags = [
        {
            "experiment_id": experiment["id"],
            "tag": f"tag-{int(experiment['id'][:8]) % TAGS}",
            "created_at": experiment["created_at"],
        }
        for experiment in batch
    ]
    attempts = [
        {
            "experiment_id": experiment["id"],
            "number": 1,
            "worker": "worker-1",
            "start_epoch": 0,
            "started_at": experiment["started_at"],
            "ended_at": experiment["finished_at"],
            "outcome": experiment["status"] if experiment["finished_at"] else None,
        }
        for experiment in batch
        if experiment["started_at"] is not None
    ]
    with engine.begin() as connection:
        connection.execute(insert(ExperimentRow), batch)
        if attempts:
            connection.execute(insert(AttemptRow), attempts)
        connection.execute(insert(ExperimentTagRow), tags)
        if epochs:
            connection.execute(insert(EpochRow), epochs)


def database_bytes(engine: Engine) -> int:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
            size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
            return int(pages) * int(size)
        return int(connection.scalar(text("SELECT pg_database_size(current_database())")) or 0)


# The reads -------------------------------------------------------------------------------------


@dataclass
class Read:
    label: str
    paths: Callable[[int], str]  # the n-th repetition's path
    expect: int = 200


def reads(http: httpx.Client, engine: Engine, sizes: Sizes) -> list[Read]:
    """The reads to time; picks real ids, cursors and tags from the seeded database."""
    with engine.connect() as connection:
        finished = list(
            connection.scalars(
                text("SELECT id FROM experiments WHERE status = 'succeeded' LIMIT 500")
            )
        )
        study = connection.scalar(text("SELECT id FROM studies LIMIT 1"))
    deep = min(sizes.experiments // 2, 50_000)
    page = http.get("/experiments", params={"offset": deep, "limit": 50}).json()
    found = [
        Read("list: default page (newest 50)", lambda n: "/experiments"),
        Read("list: status=failed", lambda n: "/experiments?status=failed"),
        Read("list: tag", lambda n: f"/experiments?tag=tag-{n % TAGS}"),
        Read("list: owner", lambda n: f"/experiments?owner=student{n % OWNERS:02d}"),
        Read("list: sorted by -test_accuracy", lambda n: "/experiments?order=-test_accuracy"),
        Read("list: sorted by test_accuracy", lambda n: "/experiments?order=test_accuracy"),
        Read(f"list: deep page (offset {deep:,})", lambda n: f"/experiments?offset={deep}"),
    ]
    cursor = page.get("next_cursor")
    if cursor:  # the keyset page at the same depth
        found.append(
            Read(f"list: deep page (cursor at {deep:,})", lambda n: f"/experiments?cursor={cursor}")
        )
    found += [
        Read(
            "compact CSV: one tag, 200 a page",
            lambda n: f"/experiments?tag=tag-{n % TAGS}&format=csv&limit=200",
        ),
        Read("history of one", lambda n: f"/experiments/{finished[n % len(finished)]}/history"),
        Read("one experiment", lambda n: f"/experiments/{finished[n % len(finished)]}"),
        Read(f"study leaderboard ({sizes.trials} trials)", lambda n: f"/studies/{study}", 200),
        Read("studies: newest 50, their progress", lambda n: "/studies"),
        Read("compare 10", lambda n: "/compare?ids=" + ",".join(finished[n % 50 : n % 50 + 10])),
        Read(
            "event stream of a finished one",
            lambda n: f"/experiments/{finished[n % len(finished)]}/events?after=999999999",
            204,
        ),
        Read("health", lambda n: "/health"),
    ]
    if not study:
        found = [read for read in found if not read.label.startswith("study")]
    return found


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def time_read(http: httpx.Client, read: Read, repeat: int) -> list[float]:
    for n in range(3):  # warm-up: connections, caches, the first compile of each statement
        http.get(read.paths(n))
    samples = []
    for n in range(repeat):
        started = time.perf_counter()
        response = http.get(read.paths(n))
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != read.expect:
            raise SystemExit(f"{read.label}: {response.status_code} {response.text[:300]}")
    return samples


def tag_walk(http: httpx.Client) -> tuple[float, int]:
    """One tag's every run as compact CSV, page after page (by the Link header's cursor, or by
    offset where the service has none): milliseconds and rows."""
    started = time.perf_counter()
    rows, offset = 0, 0
    url: str = "/experiments?tag=tag-1&format=csv&limit=200"
    while True:
        response = http.get(url)
        got = response.text.count("\n") - 1
        rows += got
        if "next" in response.links:
            url = response.links["next"]["url"]
        elif got == 200 and "cursor" not in url:
            offset += 200
            url = f"/experiments?tag=tag-1&format=csv&limit=200&offset={offset}"
        else:
            break
    return (time.perf_counter() - started) * 1000, rows


# Query plans -----------------------------------------------------------------------------------


@contextmanager
def statements_of() -> Iterator[list[tuple[float, str, Any]]]:
    """Every statement any engine runs meanwhile: (milliseconds, SQL, parameters)."""
    seen: list[tuple[float, str, Any]] = []

    def before(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        conn.info["growth_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        started = conn.info.pop("growth_started", None)
        if started is not None:  # not one a thread began before listening (the preloader's)
            seen.append(((time.perf_counter() - started) * 1000, sql, params))

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)
        event.remove(Engine, "after_cursor_execute", after)


def explain(url: str, path: str, root: Path, *, top: int = 3) -> None:
    """Run `path` in-process, then the plans of its slowest statements."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings

    settings = Settings(
        database_url=url,
        queue_url=f"sqlite:///{root / 'explain-queue.db'}",
        models_dir=str(root / "models"),
        work_dir=str(root / "explain-work"),
        mnist_path=MNIST_PATH,
    )
    database = Database(url)
    app = create_app(settings, migrate=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.get(path)  # warm
        with statements_of() as seen:
            client.get(path)
    slowest = sorted(seen, key=lambda found: -found[0])[:top]
    prefix = (
        "EXPLAIN QUERY PLAN " if database.engine.dialect.name == "sqlite" else "EXPLAIN ANALYZE "
    )
    with database.engine.connect() as connection:
        for milliseconds, sql, params in slowest:
            print(f"  {milliseconds:7.2f} ms  {' '.join(sql.split())[:400]}")
            plan = connection.exec_driver_sql(prefix + sql, params).all()
            # SQLite: (id, parent, notused, detail); PostgreSQL: one line of text a row.
            for row in plan:
                print("            " + (row[-1] if len(row) > 1 else str(row[0])))
    database.dispose()


# Main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=10, help="epoch rows per experiment")
    parser.add_argument("--studies", type=int, default=500)
    parser.add_argument("--trials", type=int, default=100, help="trials per study")
    parser.add_argument("--repeat", type=int, default=200, help="timed requests per read")
    parser.add_argument("--database-url", help="PostgreSQL to seed (default: a SQLite file)")
    parser.add_argument("--keep", type=Path, help="SQLite file to seed once and reuse")
    parser.add_argument("--explain", action="store_true", help="query plans of the slowest reads")
    parser.add_argument(
        "--reuse", action="store_true", help="measure --database-url as an earlier run seeded it"
    )
    parser.add_argument(
        "--seed-only",
        action="store_true",
        help="seed the --keep file (or --database-url) and stop: seed outside `flock`, measure in",
    )
    arguments = parser.parse_args()
    sizes = Sizes(
        arguments.experiments,
        arguments.epochs,
        min(arguments.studies, arguments.experiments // max(arguments.trials, 1)),
        arguments.trials,
    )
    with tempfile.TemporaryDirectory(prefix="growth-") as scratch:
        root = Path(scratch)
        path = arguments.keep or root / "service.db"
        url = arguments.database_url or f"sqlite:///{path}"
        fresh = not (arguments.reuse or (arguments.keep and arguments.keep.exists()))
        if arguments.database_url and fresh:
            empty_postgres(url)
        database = Database(url)
        upgrade_to_head(url, database.engine)
        if fresh:
            seed(database.engine, sizes)
        if database.engine.dialect.name == "postgresql":
            with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.exec_driver_sql("VACUUM ANALYZE")
        else:
            with database.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
        with database.engine.connect() as connection:
            seeded = connection.scalar(text("SELECT count(*) FROM experiments")) or 0
        sizes = dataclasses.replace(sizes, experiments=max(seeded, 1))
        if arguments.seed_only:
            database.dispose()
            return
        size = database_bytes(database.engine)
        measure(url, root, database.engine, sizes, arguments)
        print(
            f"\ndatabase: {size / 1e6:.1f} MB, {size / sizes.experiments * 1000 / 1e6:.2f} MB "
            f"per 1,000 experiments ({database.engine.dialect.name}); load {os.getloadavg()[0]:.2f}"
        )
        database.dispose()


def measure(url: str, root: Path, engine: Engine, sizes: Sizes, arguments: Any) -> None:
    port = free_port()
    env = service_env(root, mnist=MNIST_PATH, port=port, DATABASE_URL=url, WORKER_SLOTS="1")
    api = [sys.executable, "-m", "service", "api"]
    with (
        running(api, env, root / "api.log"),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
    ):

        def up() -> bool:
            try:
                return http.get("/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait(up, timeout=120, what="the API")
        found = reads(http, engine, sizes)
        print(f"{sizes.experiments:,} experiments; {arguments.repeat} requests per read")
        print(f"{'read':<42} {'p50 ms':>8} {'p99 ms':>8}  (load {os.getloadavg()[0]:.2f})")
        timed = []
        for read in found:
            try:
                samples = time_read(http, read, arguments.repeat)
            except httpx.HTTPError as error:
                log = (root / "api.log").read_text()[-3000:]
                raise SystemExit(f"{read.label}: {error}\n{log}") from error
            p50, p99 = statistics.median(samples), percentile(samples, 0.99)
            timed.append((p99, read))
            print(f"{read.label:<42} {p50:8.2f} {p99:8.2f}", flush=True)
        milliseconds, rows = tag_walk(http)
        print(
            f"{'compact CSV: one tag, every run, paged':<42} {milliseconds:8.2f} ms "
            f"in all, {rows} rows"
        )
    poll = poll_timings(engine, arguments.repeat)
    label = "event feed poll (in process)"
    print(f"{label:<42} {statistics.median(poll):8.2f} {percentile(poll, 0.99):8.2f}")
    if arguments.explain:
        for p99, read in sorted(timed, key=lambda found: -found[0])[:4]:
            print(f"\n{read.label} (p99 {p99:.2f} ms): its slowest statements")
            explain(url, read.paths(1), root)


def poll_timings(engine: Engine, repeat: int) -> list[float]:
    """What each API process does every EVENTS_POLL_SECONDS: the log's changes past its cursor."""
    database = Database(str(engine.url.render_as_string(hide_password=False)))
    samples = []
    with database.scope() as session:
        cursor = changes.head(session)
    for _ in range(repeat):
        started = time.perf_counter()
        with database.scope() as session:
            changes.since(session, after=cursor - 1)
        samples.append((time.perf_counter() - started) * 1000)
    database.dispose()
    return samples


if __name__ == "__main__":
    main()
