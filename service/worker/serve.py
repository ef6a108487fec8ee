"""The warm training process's loop: train the jobs its slot sends, one at a time.

A fresh interpreter per attempt pays TensorFlow's import, its thread set-up and MNIST's load
every time: most of a short trial. So each slot keeps one `python -m service.worker.training
--serve` (host.py is the slot's end). Each job line is trained exactly as `python -m
service.worker.training <experiment_id> <attempt>` would, and answered with that process's exit
code (protocol.py); an evaluation asked for after a training is answered the same way
(evaluation.py). Between jobs it clears Keras's session, collects garbage and drops the
supervisor's signals; every training seeds itself and reads its split from arrays no job can
write, so a job's history does not depend on what ran before it. It keeps the models of its
last few architectures: a job of the same architecture trains one of them, with every number
its own seeded model would have, and skips tracing Keras's functions again
(service/ml/traced.py).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from typing import IO

from service.config import Settings
from service.worker.attempt import run
from service.worker.evaluation import evaluate
from service.worker.job_signals import JobSignals, listen
from service.worker.protocol import COMMAND, EVALUATE, EXIT_OK, Job, answer
from service.worker.tensorflow_setup import configure_tensorflow
from service.worker.title import set_title


def serve(settings: Settings, *, answers: int, commands: IO[bytes] | None = None) -> int:
    """Train the jobs read from `commands` (stdin) one at a time, answering each with its exit
    code on the `answers` file descriptor; return once the pipe closes."""
    listen(None)  # a signal before the first job belongs to no job
    os.set_inheritable(answers, False)  # a child of ours holding it would hide our death
    commands = commands or sys.stdin.buffer
    jobs = 0
    set_title([*COMMAND, "--serve"])
    _warm_up(settings)
    from service.ml.traced import TracedModels

    traced = TracedModels()
    while line := commands.readline():
        job = Job.parse(line)
        signals = JobSignals()
        listen(signals)
        if job.attempt is None:
            set_title([*COMMAND, job.experiment_id, EVALUATE])
            code = evaluate(settings, job.experiment_id)
        else:
            set_title([*COMMAND, job.experiment_id, str(job.attempt)])
            code = run(job.experiment_id, job.attempt, settings, signals=signals, traced=traced)
        listen(None)
        jobs += 1
        set_title([*COMMAND, "--serve", f"({jobs} done)"])
        os.write(answers, answer(code))
        _forget()
    return EXIT_OK


def _warm_up(settings: Settings) -> None:
    """Pay before the first job what every job would pay: TensorFlow's import and threads
    (fixed at its first use), Keras, MNIST scaled to floats."""
    configure_tensorflow(settings)
    from service.ml import data as mnist
    from service.ml import train  # noqa: F401  (Keras, and what builds and fits a model)

    # A job meets the same error, and reports it as a one-shot process would.
    with contextlib.suppress(Exception):
        _ = mnist.load_mnist(settings.mnist_path).scaled
    # What is loaded now lives as long as the process: out of the collector's sight, the
    # collection after each job looks at that job's objects only (0.5-1 s less per job).
    gc.collect()
    gc.freeze()


def _forget() -> None:
    """Drop the last job's models and graphs: Keras's global state (layer-name counters
    included) is as a fresh process has it, and the memory goes back (service/ml/session.py:
    the graphs of train functions replaced for a new optimizer included)."""
    from service.ml.session import forget_job

    # It collects the garbage itself (clear_session's free_memory): a second collection found
    # nothing to free and took 3-50 ms while the slot's next job waited for it.
    forget_job()
