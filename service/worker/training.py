"""The training process: `python -m service.worker.training` (protocol.py's COMMAND).

`python -m service.worker.training <experiment_id> <attempt>` trains one attempt and exits with
its exit code (attempt.py); the supervisor starts `python -m service.worker.training --serve
<answers fd>`, a warm process that trains the attempts its slot sends it, one after another
(serve.py). Either is spawned, never forked from a process that has loaded TensorFlow (such a
child hangs in `fit`). Started by a supervisor, it obeys that supervisor only (lifeline.py).
"""

from __future__ import annotations

import logging
import os
import sys

from service import logs
from service.config import Settings
from service.worker import attempt
from service.worker.lifeline import obey_supervisor_only, watch_parent
from service.worker.priority import lower_priority
from service.worker.protocol import EXIT_USAGE
from service.worker.quiet import QuietStderr

USAGE = (
    "usage: python -m service.worker.training <experiment_id> <attempt>\n"
    "       python -m service.worker.training --serve <answers fd> (started by a worker slot)"
)


def main(argv: list[str] | None = None) -> int:
    obey_supervisor_only()
    watch_parent()
    settings = Settings()
    # Trainings yield the CPU to the API: reads and predictions stay quick while they run.
    lower_priority(settings.training_niceness)
    args = sys.argv[1:] if argv is None else argv
    # LOG_FORMAT and LOG_LEVEL as in the worker that started it; TF_CPP_MIN_LOG_LEVEL too.
    logs.configure(text_format=logs.role_format("training"))
    if args[:1] == ["--serve"] and len(args) >= 2 and args[1].isdigit():
        from service.worker.serve import serve

        return serve(settings, answers=int(args[1]))
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return EXIT_USAGE
    return attempt.run(args[0], int(args[1]), settings)


if __name__ == "__main__":
    with QuietStderr():
        code = main()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    # Everything is written and closed by now. Skip the interpreter's teardown, which takes
    # TensorFlow a second or two after a fit and would keep the worker's slot busy meanwhile.
    os._exit(code)
