"""Prometheus metrics: what each API process counts as it works, and what the database says at
scrape time (experiments, queue, trainings, heartbeats, lost attempts, epoch seconds).

Several API processes (`--workers N`) share one PROMETHEUS_MULTIPROC_DIR, set up by the parent
(`prepare_multiprocess_dir`), and any of them answers a scrape with the sum of all. Workers'
figures come from the database, so one scrape of any API covers every worker on any machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from service.db.stats import Operations
from service.maintenance.disk import DiskReport

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
EPOCH_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
OPERATIONS_TTL_SECONDS = 2.0  # scrapes in quick succession (several Prometheus) share a query

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
PREDICTIONS = Counter("mnist_predictions_total", "Images answered, by model", ["model"])
PREDICT_BATCH = Histogram(
    "mnist_prediction_batch_size", "Images per prediction request", ["model"], buckets=BATCH_BUCKETS
)
FORWARD_BATCH = Histogram(
    "mnist_forward_batch_size",
    "Images per micro-batched forward pass (requests answered together)",
    buckets=BATCH_BUCKETS,
)
CACHE_HITS = Counter("mnist_model_cache_hits_total", "Predictions whose model was warm")
CACHE_MISSES = Counter("mnist_model_cache_misses_total", "Predictions that had to load a model")
MODEL_LOAD_SECONDS = Histogram(
    "mnist_model_load_seconds",
    "Loading, compiling and warming a model (its _count is the number of loads)",
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
MODEL_LOADS = Counter(
    "mnist_model_loads_total",
    "Models loaded, by who waited for it: a request, or the background preloader",
    ["by"],
)
SSE_CLIENTS = Gauge(
    "mnist_sse_clients", "Clients connected to an event stream", multiprocess_mode="livesum"
)


def prepare_multiprocess_dir(environ: MutableMapping[str, str]) -> Path:
    """An empty PROMETHEUS_MULTIPROC_DIR for the API processes about to start: the one given
    (emptied, as the client library asks between runs) or a new temporary one."""
    given = environ.get(MULTIPROC_VARIABLE)
    if given:
        path = Path(given)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    else:
        path = Path(tempfile.mkdtemp(prefix="mnist-lab-metrics-"))
        environ[MULTIPROC_VARIABLE] = str(path)
    return path


class OperationsCollector(Collector):
    """Figures from the database (and the queue), read at most every OPERATIONS_TTL_SECONDS."""

    def __init__(
        self,
        read: Callable[[], Operations],
        queue_depth: Callable[[], int],
        disk: Callable[[], DiskReport] | None = None,
    ) -> None:
        self._read = read
        self._queue_depth = queue_depth
        self._disk = disk
        self._lock = threading.Lock()
        self._cached: tuple[float, Operations, int] | None = None

    def _snapshot(self) -> tuple[Operations, int]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > OPERATIONS_TTL_SECONDS:
                self._cached = (now, self._read(), self._queue_depth())
            return self._cached[1], self._cached[2]

    def collect(self) -> Iterator[Metric]:
        ops, depth = self._snapshot()
        yield _by_label(
            "mnist_experiments", "Experiments by status", "status", ops.experiments_by_status
        )
        yield GaugeMetricFamily(
            "mnist_trainings_running",
            "Trainings running now, on any worker",
            value=ops.experiments_by_status.get("running", 0),
        )
        yield GaugeMetricFamily(
            "mnist_queue_depth", "Training jobs waiting in the queue for a worker", value=depth
        )
        yield _by_label(
            "mnist_worker_heartbeat_age_seconds",
            "Seconds since each worker last renewed a lease it holds",
            "worker",
            ops.heartbeat_age_by_worker,
        )
        yield _by_label(
            "mnist_attempts_lost",
            "Training attempts lost (requeued or failed), by why",
            "reason",
            ops.attempts_lost_by_reason,
        )
        epochs = HistogramMetricFamily(
            "mnist_epoch_seconds", "Seconds per training epoch, of every recorded epoch"
        )
        epochs.add_metric(
            [],
            [(str(bound), count) for bound, count in ops.epoch_buckets]
            + [("+Inf", ops.epoch_count)],
            sum_value=ops.epoch_seconds_sum,
        )
        yield epochs
        if self._disk is not None:
            yield from _disk_gauges(self._disk())


def _disk_gauges(report: DiskReport) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "mnist_store_bytes", "Bytes in the model store (models and checkpoints)", report.store_bytes
    )
    yield GaugeMetricFamily(
        "mnist_database_bytes", "Bytes the database takes on disk", report.database_bytes
    )
    if report.free_bytes is not None:
        yield GaugeMetricFamily(
            "mnist_disk_free_bytes",
            "Free bytes on the fullest disk the service writes to (MIN_FREE_DISK_BYTES guards it)",
            report.free_bytes,
        )


def _by_label(name: str, help_text: str, label: str, values: dict[str, Any]) -> Metric:
    family = GaugeMetricFamily(name, help_text, labels=[label])
    for key, number in values.items():
        family.add_metric([key], number)
    return family


class _ThisProcess(Collector):
    """The default registry's metrics, when this process is the only one counting."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape(operations: Collector | None = None) -> bytes:
    """The Prometheus text exposition: every API process's counts, and `operations`."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_VARIABLE):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
    else:
        registry.register(_ThisProcess())
    if operations is not None:
        registry.register(operations)
    return generate_latest(registry)
