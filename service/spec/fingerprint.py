"""A spec's identity: its normalised JSON (validated, Keras defaults filled in) and its sha256.

Two submissions that train the same thing hash alike however they were written (argument
order, defaults left out or spelled out, an optimizer given by name); the hash is taken at
submission, so it names what was trained even after the spec grows new defaulted fields.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from service.spec.experiment import ExperimentSpec


def normalised_spec(spec: ExperimentSpec) -> dict[str, Any]:
    """The spec as stored: JSON types, every default filled in. Only the spec's own fields: a
    request body's `name`, `description` and `tags` are not part of what is trained, even when
    a body (`ExperimentCreate`, a subclass) is passed as the spec."""
    return spec.model_dump(mode="json", include=set(ExperimentSpec.model_fields))


def spec_hash(spec: ExperimentSpec) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of the normalised spec."""
    canonical = json.dumps(
        normalised_spec(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
