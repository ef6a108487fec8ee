"""Serving: how a request names the model that answers it (best, latest, an alias, an id),
the models that may answer, and what a prediction asks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.mnist import Scale

# How a request names the model that answers it.
BEST = "best"
"""The succeeded experiment with the highest test accuracy."""
LATEST = "latest"
"""The most recently finished succeeded experiment."""
RESERVED = frozenset({BEST, LATEST})
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
EXPERIMENT_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
REFERENCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ALIAS_RULE = "1-64 lowercase letters, digits, '-' or '_', starting with a letter"


def reference_problem(reference: str) -> str | None:
    """Why `reference` cannot name a model (best, latest, an alias or an id), or None."""
    if REFERENCE_PATTERN.fullmatch(reference):
        return None
    lowered = reference.strip().lower()
    hint = f"did you mean {lowered!r}? " if REFERENCE_PATTERN.fullmatch(lowered) else ""
    return (
        f"{reference!r} names no model; {hint}use 'best', 'latest', an alias "
        f"({_ALIAS_RULE}) or an experiment id"
    )


def alias_problem(name: str) -> str | None:
    """Why `name` cannot be an alias, or None when it can: the rules the API and the database share.

    An alias must not shadow a model reference that already means something else.
    """
    # fullmatch: `$` alone would let a trailing newline through.
    if not ALIAS_PATTERN.fullmatch(name):
        lowered = name.strip().lower()
        hint = f"; did you mean {lowered!r}?" if ALIAS_PATTERN.fullmatch(lowered) else ""
        return f"{name!r} is not a valid alias: use {_ALIAS_RULE}{hint}"
    if name in RESERVED:
        return (
            f"{name!r} is reserved ('best' is the most accurate model, 'latest' the most "
            "recently finished); choose another alias"
        )
    if EXPERIMENT_ID_PATTERN.fullmatch(name):
        return (
            f"{name!r} looks like an experiment id (32 hex digits); an alias needs a name that "
            "cannot be mistaken for one"
        )
    return None


@dataclass(frozen=True)
class ServableModel:
    """A succeeded experiment whose saved model can answer predictions."""

    experiment_id: str
    name: str
    test_accuracy: float | None
    test_loss: float | None
    finished_at: datetime | None
    model_uri: str
    aliases: tuple[str, ...] = ()

    def is_version(self, version: str | None) -> bool:
        """Whether a request for `version` (None: any) may be answered by this model: a
        model's one version is the experiment id its name resolved to."""
        return version is None or version == self.experiment_id


@dataclass(frozen=True)
class ImagesToPredict:
    """What a prediction request asks, as the domain takes it: the model it names, its images
    in order (pixel lists or base64-encoded files, each beside the request field that gave it,
    for the messages) and the scale to assume for pixel lists."""

    model: str
    pixels: tuple[tuple[str, Any], ...] = ()
    encoded: tuple[tuple[str, str], ...] = ()
    scale: Scale = "auto"

    @property
    def count(self) -> int:
        return len(self.pixels) + len(self.encoded)


@dataclass(frozen=True)
class Alias:
    alias: str
    experiment_id: str
    updated_at: datetime
    owner: str | None = None
