"""The error tree drawn in `service/errors.py`'s docstring is the real one, statuses included."""

from __future__ import annotations

import importlib
import pkgutil
import re

import service
from service import errors
from service.errors import ServiceError

# "│   ├── ExperimentNotFound (404)": four characters of drawing per level, a name, a status.
TREE_LINE = re.compile(
    r"^(?P<indent>(?:[│ ] {3})*)(?:[├└]── )?(?P<name>\w+) \((?P<status>\d{3})\)$"
)


def drawn_tree() -> dict[str, tuple[str | None, int]]:
    """Each class the docstring draws: its parent in the drawing and the status it shows."""
    assert errors.__doc__ is not None
    drawn: dict[str, tuple[str | None, int]] = {}
    ancestors: list[str] = []
    for line in errors.__doc__.splitlines():
        match = TREE_LINE.match(line)
        if not match:
            continue
        depth = len(match["indent"]) // 4 + (1 if "──" in line else 0)
        del ancestors[depth:]
        parent = ancestors[-1] if ancestors else None
        drawn[match["name"]] = (parent, int(match["status"]))
        ancestors.append(match["name"])
    return drawn


def every_error() -> list[type[ServiceError]]:
    """ServiceError and all its subclasses, after importing every module that could define one."""
    for module in pkgutil.walk_packages(service.__path__, "service."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found = [ServiceError]
    for cls in found:  # grows as it goes: a breadth-first walk of __subclasses__()
        found.extend(cls.__subclasses__())
    return found


def real_tree() -> dict[str, tuple[str | None, int]]:
    return {
        cls.__name__: (None if cls is ServiceError else cls.__base__.__name__, cls.status_code)
        for cls in every_error()
    }


def test_the_docstring_draws_the_real_error_tree() -> None:
    assert drawn_tree() == real_tree()


def test_every_error_is_defined_in_service_errors() -> None:
    stray = [
        f"{cls.__module__}.{cls.__name__}"
        for cls in every_error()
        if cls.__module__ != errors.__name__
    ]
    assert not stray, f"define these in service/errors.py, under ServiceError: {stray}"


def test_every_error_has_its_own_code() -> None:
    codes = [cls.code for cls in every_error()]
    assert len(codes) == len(set(codes)), codes


def test_the_body_carries_details_only_when_there_are_some() -> None:
    assert errors.error_body("queue_full", "wait") == {"error": "queue_full", "detail": "wait"}
    with_details = errors.error_body("invalid_spec", "no", details=[])
    assert with_details == {"error": "invalid_spec", "detail": "no", "details": []}
