"""docker-compose.yml and the Dockerfile agree with the code: commands, settings, wiring."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from service.__main__ import build_parser
from service.config import Settings

REPO = Path(__file__).resolve().parents[2]
APP_SERVICES = ["migrate", "api", "worker", "worker-gpu"]
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def load_compose() -> dict[str, Any]:
    with (REPO / "docker-compose.yml").open() as file:
        compose: dict[str, Any] = yaml.safe_load(file)
    return compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = compose["services"]
    return services


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment, in either of compose's two spellings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    raw = service["command"]
    return shlex.split(raw) if isinstance(raw, str) else list(raw)


def assert_valid_service_command(argv: list[str]) -> None:
    """`python -m service [subcommand]`, and the real CLI parser accepts the rest."""
    assert argv[:3] == ["python", "-m", "service"], argv
    build_parser().parse_args(argv[3:])  # exits (SystemExit) on an unknown subcommand


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            name, _, arguments = line.strip().partition(" ")
            instructions.append((name.upper(), arguments.strip()))
    return instructions


def test_services_exist(services: dict[str, Any]) -> None:
    assert {"api", "worker", "migrate", "postgres", "redis"} <= services.keys()


@pytest.mark.parametrize("name", APP_SERVICES)
def test_environment_names_are_settings(services: dict[str, Any], name: str) -> None:
    unknown = set(environment(services[name])) - SETTING_NAMES
    assert not unknown, f"{name} sets {sorted(unknown)}, which Settings does not read"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_command_parses_with_the_cli(services: dict[str, Any], name: str) -> None:
    assert_valid_service_command(command(services[name]))


@pytest.mark.parametrize(
    ("name", "subcommand"),
    [("migrate", "migrate"), ("api", "api"), ("worker", "worker"), ("worker-gpu", "worker")],
)
def test_each_service_runs_its_own_part(
    services: dict[str, Any], name: str, subcommand: str
) -> None:
    assert build_parser().parse_args(command(services[name])[3:]).command == subcommand


def test_unknown_subcommand_is_refused_by_the_cli() -> None:
    """Guards the guard: the command tests mean something only if the parser can say no."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve"])


@pytest.mark.parametrize("name", ["worker", "worker-gpu"])
def test_workers_can_scale(services: dict[str, Any], name: str) -> None:
    worker = services[name]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "replicas" not in worker.get("deploy", {})


def test_migrate_runs_once_after_postgres_is_healthy(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert migrate["restart"] == "no"


@pytest.mark.parametrize("name", ["api", "worker", "worker-gpu"])
def test_app_waits_for_migrations_and_redis(services: dict[str, Any], name: str) -> None:
    depends_on = services[name]["depends_on"]
    assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
    assert depends_on["redis"] == {"condition": "service_healthy"}
    assert depends_on["postgres"] == {"condition": "service_healthy"}


def test_postgres_and_redis_have_healthchecks(services: dict[str, Any]) -> None:
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_api_is_published_and_checked_on_health(services: dict[str, Any]) -> None:
    api = services["api"]
    env = environment(api)
    assert env["HOST"] == "0.0.0.0"
    assert f"{env['PORT']}:{env['PORT']}" in api["ports"]
    assert f"127.0.0.1:{env['PORT']}/health" in " ".join(api["healthcheck"]["test"])


@pytest.mark.parametrize("name", ["worker", "worker-gpu", "migrate"])
def test_services_without_http_do_not_inherit_the_image_healthcheck(
    services: dict[str, Any], name: str
) -> None:
    assert services[name]["healthcheck"] == {"disable": True}


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


@pytest.mark.parametrize("name", ["api", "worker", "worker-gpu"])
def test_api_and_workers_share_the_models_volume(services: dict[str, Any], name: str) -> None:
    service = services[name]
    models_dir = environment(service)["MODELS_DIR"]
    assert f"models:{models_dir}" in service["volumes"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_one_database_and_queue(services: dict[str, Any], name: str) -> None:
    env = environment(services[name])
    reference = environment(services["api"])
    assert env["DATABASE_URL"] == reference["DATABASE_URL"]
    assert env["QUEUE_URL"] == reference["QUEUE_URL"]


def test_database_url_uses_psycopg_and_the_postgres_service(services: dict[str, Any]) -> None:
    url = make_url(environment(services["api"])["DATABASE_URL"])
    postgres = environment(services["postgres"])

    assert url.drivername == "postgresql+psycopg"
    assert url.host == "postgres"
    assert url.username == postgres["POSTGRES_USER"]
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.database == postgres["POSTGRES_DB"]


def test_queue_url_points_at_the_redis_service(services: dict[str, Any]) -> None:
    assert environment(services["api"])["QUEUE_URL"].startswith("redis://redis:6379/")


def test_settings_accept_the_compose_environment(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment(services["api"]).items():
        monkeypatch.setenv(name, value)

    settings = Settings()

    assert settings.host == "0.0.0.0"
    assert settings.models_dir == "/models"


def test_dockerfile_cmd_is_a_valid_command() -> None:
    instructions = dockerfile_instructions()
    assert not [arguments for name, arguments in instructions if name == "ENTRYPOINT"]
    cmd = [arguments for name, arguments in instructions if name == "CMD"][-1]
    assert_valid_service_command(json.loads(cmd))


def test_dockerfile_healthcheck_asks_health() -> None:
    (healthcheck,) = [
        arguments for name, arguments in dockerfile_instructions() if name == "HEALTHCHECK"
    ]
    assert "/health" in healthcheck


def test_dockerfile_env_names_are_settings_or_runtime() -> None:
    runtime = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR"}
    runtime |= {"PIP_DISABLE_PIP_VERSION_CHECK", "TF_CPP_MIN_LOG_LEVEL"}
    for name, arguments in dockerfile_instructions():
        if name == "ENV":
            names = {pair.split("=", 1)[0] for pair in shlex.split(arguments)}
            assert names <= SETTING_NAMES | runtime, names - SETTING_NAMES - runtime


def test_dockerfile_runs_as_a_user_in_app() -> None:
    instructions = dict(dockerfile_instructions())
    assert instructions["FROM"] == "python:3.11-slim"
    assert instructions["WORKDIR"] == "/app"
    assert instructions["USER"] not in ("root", "0")


def test_build_args_are_declared_in_the_dockerfile(services: dict[str, Any]) -> None:
    declared = {
        arguments.split("=", 1)[0] for name, arguments in dockerfile_instructions() if name == "ARG"
    }
    for service in services.values():
        build = service.get("build")
        if isinstance(build, dict):
            assert set(build.get("args", {})) <= declared


def test_gpu_worker_builds_tensorflow_with_cuda_and_reserves_gpus(
    services: dict[str, Any],
) -> None:
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["args"]["TENSORFLOW"].startswith("tensorflow[and-cuda]")
    assert gpu["image"] != services["worker"]["image"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
