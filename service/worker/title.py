"""What `ps` shows for a warm training process: the job it trains now, or that it waits.

The `setproctitle` package rewrites the process's command line (/proc/<pid>/cmdline), as
PostgreSQL does, in the memory its argv and environment strings were passed in. A warm process
is started with ROOM spare characters, so that a training's own command line fits even when the
environment is small.
"""

from __future__ import annotations

from setproctitle import setproctitle

# An argument of spaces: invisible in `ps`, and room for "<experiment id> <attempt>".
ROOM = " " * 80


def set_title(words: list[str]) -> None:
    """Show `words` as this process's command line; cut to the room it has, where the
    platform allows it at all (the title is for people and tests, never for the work)."""
    setproctitle(" ".join(words))
