"""The `optimizers` study preset end to end: wall time with one and with two worker slots, with
a fresh training process per trial (TRAINING_PROCESS_JOBS=1) and with each slot's warm one
(the default), how much of each trial is start-up rather than training, and where it goes.

Runs the service on its embedded defaults (`python -m service`: API and one worker, SQLite)
in a temporary folder, posts the preset with `max_parallel` equal to the slots, and waits for
the study to finish; checks that every trial succeeded and that the curves render. Per trial,
"training" is the sum of its epochs' seconds and "the rest" is the rest of its running time
(started to finished). Its pieces, medians over the trials, come from the line each training
process logs per job (attempt.py): "hand-in" is the running time before the process began the
job (the claim, then a fresh process's interpreter, TensorFlow and MNIST, or a warm one's
clean-up after its last job), then its own parts: start (read the spec, split the data, look
for a checkpoint), build (and compile), fit besides the epochs, checkpoints and epoch rows
(within fit), evaluate, save, and the database writes. "Hand-off" is the time between a trial's
end and the start of the next trial on the same process (the supervisor settling, the study
queueing its next trial, the slot claiming it): part of the wall time, of no trial's. The
machine may be shared: compare the ratios within one run, not figures across runs.

    python bench/study.py --epochs 1 --train-size 2000          # fresh vs warm, 1 and 2 slots
    python bench/study.py --slots 1 --jobs-per-process 20       # the issue's run: epochs 3,
                                                                # train_size 10000, defaults
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from harness import REPO, free_port, running, service_env, wait

from service.config import Settings

MNIST_PATH = os.environ.get("MNIST_PATH") or str(REPO.parent / "shared" / "data" / "mnist.npz")
START_TIMEOUT = 120.0
STUDY_TIMEOUT = 3600.0
SETTLE_SECONDS = 3.0
WARM = Settings.model_fields["training_process_jobs"].default


@dataclass
class Figures:
    wall: float
    trial: float
    """Mean running time of a trial (started to finished)."""
    training: float
    """Mean of a trial's epochs' seconds, summed."""
    typical_rest: float
    """Median of a trial's running time less its training: a warm process's cold first trial
    (one per slot) weighs on the mean, not on this."""
    succeeded: int
    curves: bool
    """Whether /studies/{id}/curves.svg answered an SVG naming every trial."""
    idle_mb: list[float]
    """Resident memory of each training process still alive once the study ended (warm ones
    waiting for their slot's next job)."""
    pieces: dict[str, float]
    """Median seconds of each piece of a trial's time besides training (see the module)."""
    reused: int
    """Trials that trained a model their process kept from an earlier trial."""

    @property
    def rest(self) -> float:
        return self.trial - self.training


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def run_study(slots: int, jobs_per_process: int, *, epochs: int, train_size: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-study-") as folder:
        root = Path(folder)
        port = free_port()
        env = service_env(
            root,
            mnist=MNIST_PATH,
            port=port,
            WORKER_SLOTS=str(slots),
            TRAINING_PROCESS_JOBS=str(jobs_per_process),
            LOG_LEVEL="INFO",  # each training's "took ... in its process" line
        )
        with (
            running([sys.executable, "-m", "service"], env, root / "service.log") as service,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
        ):

            def healthy() -> bool:
                try:
                    return http.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait(healthy, timeout=START_TIMEOUT, what="the service")
            body = {"preset": "optimizers", "epochs": epochs, "train_size": train_size}
            started = time.perf_counter()
            created = http.post("/studies", json=body | {"max_parallel": slots})
            created.raise_for_status()
            study_id = created.json()["id"]

            def finished() -> dict[str, Any] | None:
                study: dict[str, Any] = http.get(f"/studies/{study_id}").json()
                return study if study["status"] != "running" else None

            study = wait(finished, timeout=STUDY_TIMEOUT, what="the study")
            wall = time.perf_counter() - started
            # The last trial's slot closes a process that trained its share just after the
            # study reads finished: count the processes that stay.
            time.sleep(SETTLE_SECONDS)
            jobs = _jobs_logged((root / "service.log").read_text(errors="replace"))
            return _figures(http, study, wall, idle_mb=_training_memory(service.pid), jobs=jobs)


@dataclass
class Job:
    """One training's own account of its time (its process's log line)."""

    pid: int
    total: float
    parts: dict[str, float]
    epochs: float
    reused: bool


JOB_LINE = re.compile(
    r"\[training (?P<pid>\d+)\] experiment (?P<id>\w+) took (?P<total>[\d.]+) s in its "
    r"process: (?P<parts>.*); epochs (?P<epochs>[\d.]+) s(?P<reused> \(reused)?"
)


def _jobs_logged(log: str) -> dict[str, Job]:
    jobs = {}
    for found in JOB_LINE.finditer(log):
        parts = {}
        for part in found["parts"].split(", "):
            name, seconds, _ = part.rsplit(" ", 2)
            parts[name] = float(seconds)
        jobs[found["id"]] = Job(
            pid=int(found["pid"]),
            total=float(found["total"]),
            parts=parts,
            epochs=float(found["epochs"]),
            reused=found["reused"] is not None,
        )
    return jobs


def _training_memory(group: int) -> list[float]:
    """Resident MB of the live training processes in the service's process group."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if b"service.worker.training" not in (entry / "cmdline").read_bytes():
                continue
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            rss_pages = int((entry / "statm").read_text().split()[1])
        except (OSError, ValueError, IndexError):
            continue
        found.append(rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20)
    return found


def _figures(
    http: httpx.Client,
    study: dict[str, Any],
    wall: float,
    *,
    idle_mb: list[float],
    jobs: dict[str, Job],
) -> Figures:
    running_seconds, training_seconds = [], []
    trials = []
    for row in study["leaderboard"]:
        trial = http.get(f"/experiments/{row['experiment_id']}").json()
        epochs_done = http.get(f"/experiments/{row['experiment_id']}/history").json()
        running_seconds.append(_seconds(trial["started_at"], trial["finished_at"]))
        training_seconds.append(sum(e["seconds"] for e in epochs_done["epochs"]))
        trials.append(trial)
    print(
        "    leaderboard: "
        + ", ".join(f"{row['label']} {row['objective']:.3f}" for row in study["leaderboard"])
    )
    curves = http.get(f"/studies/{study['id']}/curves.svg")
    drawn = curves.status_code == 200 and curves.text.lstrip().startswith(("<svg", "<?xml"))
    return Figures(
        wall=wall,
        trial=statistics.mean(running_seconds),
        training=statistics.mean(training_seconds),
        typical_rest=statistics.median(
            run - train for run, train in zip(running_seconds, training_seconds, strict=True)
        ),
        succeeded=study["progress"].get("succeeded", 0),
        curves=drawn and all(row["label"] in curves.text for row in study["leaderboard"]),
        idle_mb=idle_mb,
        pieces=_pieces(trials, jobs),
        reused=sum(job.reused for job in jobs.values()),
    )


def _pieces(trials: list[dict[str, Any]], jobs: dict[str, Job]) -> dict[str, float]:
    """Median seconds of each piece of a trial's time besides training (see the module)."""
    samples: dict[str, list[float]] = {}

    def add(piece: str, seconds: float) -> None:
        samples.setdefault(piece, []).append(seconds)

    for trial in trials:
        job = jobs.get(trial["id"])
        if job is None:
            continue
        running = _seconds(trial["started_at"], trial["finished_at"])
        # The process's clock runs on past finished_at (its success write) by a few ms: none.
        add("hand-in", max(0.0, running - job.total))
        fit = job.parts.get("fit", 0.0)
        within_fit = job.parts.get("checkpoints", 0.0) + job.parts.get("epoch rows", 0.0)
        add("fit besides epochs", fit - job.epochs - within_fit)
        for part, seconds in job.parts.items():
            if part != "fit":
                add(part, seconds)
    by_process: dict[int, list[dict[str, Any]]] = {}
    for trial in sorted(trials, key=lambda trial: trial["started_at"]):
        if (job := jobs.get(trial["id"])) is not None:
            by_process.setdefault(job.pid, []).append(trial)
    for run in by_process.values():
        for before, after in itertools.pairwise(run):
            add("hand-off", _seconds(before["finished_at"], after["started_at"]))
    return {piece: statistics.median(seconds) for piece, seconds in samples.items()}


def _line(slots: int, jobs: int, figures: Figures) -> str:
    process = "fresh process per trial" if jobs == 1 else f"warm process ({jobs} jobs)"
    return (
        f"{slots} slot(s), {process}: wall {figures.wall:.1f} s; {figures.succeeded}/8 "
        f"succeeded; curves {'drawn' if figures.curves else 'MISSING'}; per trial "
        f"{figures.trial:.1f} s running, of which training {figures.training:.1f} s and the "
        f"rest {figures.rest:.1f} s ({figures.rest / figures.trial:.0%}; median "
        f"{figures.typical_rest:.2f} s); training processes "
        f"left waiting: {len(figures.idle_mb)}"
        + "".join(f", {mb:.0f} MB" for mb in figures.idle_mb)
        + f"; {figures.reused} trial(s) reused a kept model\n    pieces (medians): "
        + ", ".join(f"{piece} {seconds:.3f} s" for piece, seconds in figures.pieces.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--jobs-per-process",
        type=int,
        nargs="+",
        default=[1, WARM],
        help="TRAINING_PROCESS_JOBS values to compare (1: a fresh process per trial)",
    )
    args = parser.parse_args()
    print(f"optimizers preset: 8 trials, epochs {args.epochs}, train_size {args.train_size}")
    results: dict[tuple[int, int], Figures] = {}
    for slots in args.slots:
        for jobs in args.jobs_per_process:
            print(f"  running: {slots} slot(s), TRAINING_PROCESS_JOBS={jobs}", flush=True)
            results[slots, jobs] = run_study(
                slots, jobs, epochs=args.epochs, train_size=args.train_size
            )
            print("  " + _line(slots, jobs, results[slots, jobs]), flush=True)
    print()
    for (slots, jobs), figures in results.items():
        print(_line(slots, jobs, figures))
    for slots in args.slots:
        fresh, warm = results.get((slots, 1)), results.get((slots, WARM))
        if fresh and warm:
            print(f"{slots} slot(s): warm vs fresh {fresh.wall / warm.wall:.2f}x faster")
    for jobs in args.jobs_per_process:
        one, two = results.get((1, jobs)), results.get((2, jobs))
        if one and two:
            print(f"TRAINING_PROCESS_JOBS={jobs}: two slots vs one {one.wall / two.wall:.2f}x")


if __name__ == "__main__":
    main()
