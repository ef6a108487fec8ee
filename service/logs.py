"""Logging for every process `python -m service` starts: one format (text, or JSON lines with
LOG_FORMAT=json), and the id of the HTTP request being answered on each record."""

from __future__ import annotations

import json
import logging
import os
from contextvars import ContextVar
from typing import Any

# The request being answered in this context (set by the API's middleware; threads started
# with run_in_threadpool inherit it).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(name)s %(process)d %(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log shippers: time, level, logger, process, request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "request_id": getattr(record, "request_id", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def role_format(role: str) -> str:
    """The text format of a process that has one job (a training, an evaluation): its role and
    pid name every line, where the API's and a worker's name the logger."""
    return f"%(asctime)s %(levelname)s [{role} %(process)d] %(message)s"


def configure(
    level: str | None = None, log_format: str | None = None, *, text_format: str = TEXT_FORMAT
) -> None:
    """Root logging to stderr in LOG_FORMAT (`text`, as `text_format`, or `json`) at LOG_LEVEL;
    idempotent."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    fmt = (log_format or os.environ.get("LOG_FORMAT", "text")).lower()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(text_format))
    logging.basicConfig(
        level=(level or os.environ.get("LOG_LEVEL", "INFO")).upper(),
        handlers=[handler],
        force=True,
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Alembic announces each of its plugins at INFO; the migrations it runs stay visible.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # Said once per connection, so twice at every start; the migrations it runs stay visible.
    logging.getLogger("alembic.runtime.migration").addFilter(_not_alembic_preamble)
    # Huey names its task and a uuid per job; our own lines name the experiment instead.
    logging.getLogger("huey").setLevel(logging.WARNING)


def _not_alembic_preamble(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(("Context impl", "Will assume"))


def uvicorn_config(*, access_log: bool, log_format: str | None = None) -> dict[str, Any]:
    """Uvicorn's loggers in our format: its warnings and errors, and with ACCESS_LOG one line
    per request (with its request id).

    A dict, not our root handler: with `--workers`, uvicorn applies it in each API process.
    """
    fmt = (log_format or os.environ.get("LOG_FORMAT", "text")).lower()
    formatter: dict[str, Any] = {"()": JsonFormatter} if fmt == "json" else {"format": TEXT_FORMAT}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "service",
        "filters": ["request_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"service": formatter},
        "handlers": {"service": handler},
        "loggers": {
            # Its start-up lines repeat what `serve_api` already said.
            "uvicorn.error": {"handlers": ["service"], "level": "WARNING", "propagate": False},
            "uvicorn.access": {
                "handlers": ["service"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },
        },
    }
