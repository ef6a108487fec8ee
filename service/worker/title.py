"""What `ps` shows for a warm training process: the job it trains now, or that it waits.

A process's command line (/proc/<pid>/cmdline) is the memory its argv strings were passed in,
and Linux lets the process rewrite it, as PostgreSQL and setproctitle do: the kernel tells where
it lies (fields 48 and 49 of /proc/self/stat) and /proc/self/mem writes it. A warm process is
started with ROOM spare characters, so that a training's own command line fits.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

# An argument of spaces: invisible in `ps`, and room for "<experiment id> <attempt>".
ROOM = " " * 80
_STAT = Path("/proc/self/stat")
# arg_start and arg_end: fields 48 and 49, counted from 1; the split below starts at field 3.
_ARG_START = 48 - 3


def set_title(words: list[str]) -> None:
    """Show `words` as this process's command line, cut to the room it has; nothing where the
    platform does not allow it (the title is for people and tests, never for the work)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = _STAT.read_text().rsplit(")", 1)[1].split()
        start, end = int(fields[_ARG_START]), int(fields[_ARG_START + 1])
        room = end - start - 1  # the area's last byte stays NUL, so it reads as an argv
        title = b"\0".join(word.encode() for word in words)[:room]
        with open("/proc/self/mem", "r+b", buffering=0) as memory:
            memory.seek(start)
            memory.write(title.ljust(end - start, b"\0"))
