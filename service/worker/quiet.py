"""TensorFlow's C++ start-up lines, filtered out of a training process's stderr.

TensorFlow 2.21 prints them through absl before any log level applies (TF_CPP_MIN_LOG_LEVEL does
not stop "All log messages before absl::InitializeLog()" or the oneDNN notice), once per process:
a class's dozen trainings would bury the lines a teacher watches. The process's own stderr
(file descriptor 2) becomes a pipe that a thread copies to the real stderr, minus those lines.
"""

from __future__ import annotations

import os
import re
import threading

# absl's prefix for INFO/WARNING lines (`I0000 00:00:1796.. 123 port.cc:153] ...`), and the
# banner absl prints before its logging is initialised. Errors (`E...`, `F...`) still pass.
NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)|[IW]\d{4} [\d:.]+\s+\d+ "
    rb"\S+:\d+\] |To enable the following instructions: .* rebuild TensorFlow)"
)


class QuietStderr:
    """While entered, file descriptor 2 goes through the filter; on exit all of it is copied."""

    def __enter__(self) -> QuietStderr:
        self._original = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._copy, args=(read_end,), daemon=True)
        self._thread.start()
        return self

    def _copy(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not NOISE.match(line):
                    os.write(self._original, line)

    def __exit__(self, *_: object) -> None:
        os.dup2(self._original, 2)  # closes the pipe's last write end: the copier sees its end
        self._thread.join(timeout=5)
        os.close(self._original)
