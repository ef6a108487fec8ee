"""Settings read from the environment: one typed object, overridable in tests."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/service.db"
DEFAULT_QUEUE_URL = "sqlite:///./var/queue.db"
DEFAULT_MODELS_DIR = "./models_store"


class Settings(BaseSettings):
    """Everything the API, the workers and the migrations read from the environment."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # Where things live.
    database_url: str = DEFAULT_DATABASE_URL
    queue_url: str = DEFAULT_QUEUE_URL
    models_dir: str = DEFAULT_MODELS_DIR
    models_url: str | None = Field(
        default=None, description="fsspec URL of the model store; MODELS_DIR when unset"
    )
    models_storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for MODELS_URL, as JSON: "
        '{"client_kwargs": {"endpoint_url": "http://minio:9000"}, "key": "...", "secret": "..."}',
    )
    work_dir: str = "./var/work"
    # Bounds on every wait for PostgreSQL and Redis, so that a host that silently drops
    # traffic fails a request (or a heartbeat, which retries) instead of hanging it.
    database_connect_timeout: float = Field(
        default=5.0, gt=0, description="seconds to connect to PostgreSQL (libpq counts whole s)"
    )
    database_statement_timeout: float = Field(
        default=30.0, ge=0, description="seconds a PostgreSQL statement may run; 0: unbounded"
    )
    redis_connect_timeout: float = Field(default=5.0, gt=0, description="seconds to connect")
    redis_socket_timeout: float = Field(
        default=10.0, gt=1, description="seconds a Redis command may wait for its answer"
    )
    mnist_path: str | None = None

    # Serving the HTTP API.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_workers: int = Field(default=1, ge=1, le=64, description="API processes sharing the port")
    api_threads: int = Field(
        default=40,
        ge=1,
        le=1024,
        description="threads per API process for the routes that read and write the database",
    )
    api_switch_interval_ms: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="how long a thread of an API process may hold Python's GIL while another "
        "waits for it (Python's default is 5)",
    )
    allowed_hosts: str = Field(
        default="",
        description="comma-separated host names the API answers to besides loopback ones "
        "('*': any); empty: loopback names only while HOST is a loopback address, else any",
    )
    api_token: str | None = None
    protect_reads: bool = False
    class_reads: Literal["all", "own"] = Field(
        default="all",
        description="all: a student reads everyone's work; own: only their own (an exam)",
    )
    events_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often each API process reads the change log"
    )
    access_log: bool = Field(default=False, description="log one line per HTTP request")
    forwarded_allow_ips: str = Field(
        default="",
        description="comma-separated addresses or networks of the reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed ('*': any); empty: none",
    )

    # Workers.
    worker_slots: int = Field(default=1, ge=1, le=64)
    worker_label: str | None = None
    training_threads: int = Field(default=0, ge=0, description="TF threads per training; 0 = auto")
    training_path: Literal["exact", "xla"] = Field(
        default="exact",
        description="exact: TensorFlow's kernels, histories bit-identical to the notebook's "
        "plain Keras; xla: a compiled loop, 64 train steps per XLA computation over data held "
        "as tensors, about 1.3-2.6x faster on CPU, histories those of fit(jit_compile=True), "
        "losses within about 1e-5 of the notebook's (nets with Dropout stay exact: XLA's "
        "random masks are slower on CPU)",
    )
    training_niceness: int = Field(
        default=19,
        ge=0,
        le=19,
        description="CPU niceness of training and evaluation processes: on a machine shared "
        "with the API they take only the CPU it leaves (0 = compete as equals)",
    )
    training_process_jobs: int = Field(
        default=20,
        ge=1,
        description="jobs a slot's warm training process trains before a fresh one takes over; "
        "1: a fresh process per job",
    )
    training_process_idle_seconds: float = Field(
        default=300.0,
        gt=0,
        description="how long a slot's warm training process waits for a job before it exits "
        "and gives its memory back",
    )
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    sweep_seconds: float = Field(default=10.0, gt=0)
    cancel_grace_seconds: float = Field(default=10.0, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    shutdown_grace_seconds: float = Field(
        default=20.0,
        ge=0,
        description="on SIGTERM, how long a worker lets its trainings finish their epoch before "
        "it stops them; below the compose file's stop_grace_period",
    )

    # Limits a user meets before any work starts.
    max_params: int = Field(default=5_000_000, ge=1)
    max_epochs: int = Field(default=100, ge=1)
    max_layers: int = Field(default=64, ge=1)
    max_activation_bytes: int = Field(
        default=4 * 2**30,
        ge=2**20,
        description="estimated peak memory of one training above its process's baseline: a "
        "batch's activations, the weights and their state, the training set's copies",
    )
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_predict_batch: int = Field(default=256, ge=1)
    max_image_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # A 16-megapixel photo; a digit needs far fewer, and every pixel is decoded work.
    max_image_pixels: int = Field(default=16_777_216, ge=784)
    max_request_pixels: int = Field(
        default=33_554_432, ge=784, description="decoded pixels of all of a request's images"
    )
    max_queued_per_client: int = Field(default=50, ge=1)
    # The costliest request MAX_REQUEST_PIXELS allows takes 0.67 s of CPU to decode; without a
    # budget one client on 16 connections pinned both our cores (service/serving/budget.py).
    decode_pixels_per_second: int = Field(
        default=8_388_608,
        ge=0,
        description="encoded-image pixels each client may have decoded per second, "
        "on average; 0: no budget",
    )
    decode_burst_pixels: int = Field(
        default=67_108_864,
        ge=784,
        description="encoded-image pixels a client may have decoded at once, after a pause; "
        "at least MAX_REQUEST_PIXELS",
    )
    max_queued_per_person: int = Field(default=20, ge=1, description="a person's queued jobs")
    max_running_per_person: int = Field(
        default=2, ge=1, description="a person's trainings at once; more wait in the queue"
    )
    max_training_minutes_per_day: float = Field(
        default=0, ge=0, description="a person's training minutes per UTC day; 0: no limit"
    )
    fair_share: bool = Field(
        default=True,
        description="a free slot takes the job of whoever trained least lately; false: the "
        "oldest job, whoever's (first come, first served)",
    )
    fair_share_half_life: float = Field(
        default=3600.0,
        gt=0,
        description="seconds for past training time to count half in fair share (Slurm's decay)",
    )
    max_train_seconds: float = Field(default=3600.0, gt=0)
    max_study_trials: int = Field(default=100, ge=1, description="trials one study may run")

    # Serving models.
    model_cache_size: int = Field(
        default=64,
        ge=1,
        description="warm models kept per API process: a class wants about two per student, "
        "the model each asks for and the one just finished and preloaded before they ask, "
        "beside best, latest and the aliases (the notebook's nets take 2-4 MiB each warm)",
    )
    preload_models: bool = Field(
        default=True,
        description="load a model that becomes best, latest or an alias's target in the "
        "background, answering from the previous one meanwhile (briefly); false: its first "
        "request loads it",
    )
    # Off by default: on our 2-core machine it did not win at 1-64 connections (README).
    predict_batching: bool = Field(
        default=False,
        description="answer single images for one model that arrive together in one forward pass",
    )

    # Operating it for a term.
    min_free_disk_bytes: int = Field(
        default=100 * 2**20,
        ge=0,
        description="below this much free disk (where the model store, the SQLite database or "
        "the work folder live) new trainings are refused with 507; 0 turns the guard off",
    )
    retention_days: float | None = Field(
        default=None,
        gt=0,
        description="after this many days, `python -m service gc --apply` removes the files of "
        "failed, cancelled and pruned experiments (the rows stay); unset keeps them",
    )

    # Operating it.
    log_format: Literal["text", "json"] = "text"

    @model_validator(mode="after")
    def _heartbeat_inside_lease(self) -> Settings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                "HEARTBEAT_SECONDS must be shorter than LEASE_SECONDS, "
                "or every running job would look dead between two heartbeats"
            )
        return self

    @model_validator(mode="after")
    def _largest_request_fits_the_burst(self) -> Settings:
        if self.decode_burst_pixels < self.max_request_pixels:
            raise ValueError(
                "DECODE_BURST_PIXELS must be at least MAX_REQUEST_PIXELS, "
                "or the largest request the limits allow would always be refused"
            )
        return self

    @property
    def model_store_url(self) -> str:
        return self.models_url or str(Path(self.models_dir).resolve())

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
