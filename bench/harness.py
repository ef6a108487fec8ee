"""What every benchmark script needs: a free loopback port, waiting for a condition, child
processes that are stopped (with everything they started) however the script ends, and wrk
driving HTTP load from outside Python."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.1
STOP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_env(workdir: Path, *, mnist: str, port: int, **extra: str) -> dict[str, str]:
    """The environment of a `python -m service` on temporary files in `workdir`, quiet."""
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir / 'service.db'}",
        "QUEUE_URL": f"sqlite:///{workdir / 'queue.db'}",
        "MODELS_DIR": str(workdir / "models"),
        "WORK_DIR": str(workdir / "work"),
        "MNIST_PATH": mnist,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **extra,
    }


def wait(predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """The predicate's first truthy value; exits the script if none comes within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_SECONDS)


def start(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`command` in its own process group (its trainings join it), output appended to a log."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(child: subprocess.Popen[bytes]) -> None:
    """Terminate the child's whole group, then kill it if it has not gone within a while."""
    if child.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    try:
        child.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A started child that is stopped on the way out."""
    child = start(command, env, log_path)
    try:
        yield child
    finally:
        stop(child)


# wrk's report as one JSON line (latencies in microseconds), after the run.
WRK_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '\\nREPORT {"p50": %d, "p99": %d, "max": %d, "requests": %d, "us": %d, "errors": %d}\\n',
    latency:percentile(50), latency:percentile(99), latency.max, summary.requests,
    summary.duration, errors))
end
"""


@dataclass
class Run:
    """One wrk run's figures."""

    label: str
    connections: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    rate: float
    errors: int

    def line(self, ceiling: Run | None = None, width: int = 34) -> str:
        share = f"  {self.rate / ceiling.rate:5.0%} of ceiling" if ceiling else ""
        return (
            f"{self.label:<{width}} c={self.connections:<3} p50={self.p50_ms:6.2f} ms  "
            f"p99={self.p99_ms:6.2f} ms  max={self.max_ms:6.1f} ms  {self.rate:7.0f} req/s"
            f"{share}  errors={self.errors}"
        )


def _wrk_script(body_file: Path | None, headers: dict[str, str], paths: list[str]) -> str:
    if body_file is not None:
        request = [
            'wrk.method = "POST"',
            f'local f = io.open("{body_file}", "rb"); wrk.body = f:read("*a"); f:close()',
        ]
    else:
        quoted = ", ".join(f'"{path}"' for path in paths)
        # GETs taking the paths in turn.
        request = [
            f"local paths = {{{quoted}}}",
            "local turn = 0",
            "request = function()",
            "  turn = turn % #paths + 1",
            "  return wrk.format(nil, paths[turn])",
            "end",
        ]
    lines = [*request, *[f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]]
    return "\n".join([*lines, WRK_REPORT])


def wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    label: str,
    scratch: Path,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    paths: list[str] | None = None,
) -> Run:
    """wrk (one thread, compiled: it shares nothing with the server's Python) against `url`:
    POST `body` when given, else GET `paths` of it in turn (or `url` itself)."""
    stamp = time.monotonic_ns()
    body_file = None
    if body is not None:
        body_file = scratch / f"wrk-{stamp}.body"
        body_file.write_bytes(body)
    script = scratch / f"wrk-{stamp}.lua"
    script.write_text(_wrk_script(body_file, headers or {}, paths or ["/"]))
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s"]
    command += ["-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: {done.stderr or done.stdout}")
    report = json.loads(done.stdout.rsplit("REPORT ", 1)[1])
    return Run(
        label=label,
        connections=connections,
        p50_ms=report["p50"] / 1000,
        p99_ms=report["p99"] / 1000,
        max_ms=report["max"] / 1000,
        rate=report["requests"] / (report["us"] / 1e6),
        errors=report["errors"],
    )


def empty_postgres(url: str) -> None:
    """Create a PostgreSQL benchmark database if absent, then empty it (its public schema)."""
    target = make_url(url)
    server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        exists = connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    server.dispose()
    engine = create_engine(target)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
