"""A challenge's rules and the check of an entry against them.

Every rule is optional. Each broken rule is one problem in the 422, naming the rule, its value
and the entry's, so a learner fixes everything in one round.
"""

from __future__ import annotations

from typing import Any

from service.domain import Rules
from service.spec.experiment import ExperimentSpec


def _problem(rule: str, loc: list[str | int], message: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": f"rule {rule}: {message}", "type": "challenge_rule"}


def broken_rules(rules: Rules, spec: ExperimentSpec) -> list[dict[str, Any]]:
    """The rules `spec` breaks, each a problem in the shape of a 422's `details`."""
    problems: list[dict[str, Any]] = []
    if rules.max_params is not None and (params := spec.parameter_count) > rules.max_params:
        problems.append(
            _problem(
                "max_params",
                ["layers"],
                f"the net has {params:,} parameters, over the challenge's {rules.max_params:,}",
            )
        )
    if rules.max_epochs is not None and spec.fit.epochs > rules.max_epochs:
        problems.append(
            _problem(
                "max_epochs",
                ["fit", "epochs"],
                f"{spec.fit.epochs} epochs is over the challenge's {rules.max_epochs}",
            )
        )
    if rules.train_size is not None and spec.fit.fitted_images != rules.train_size:
        problems.append(
            _problem(
                "train_size",
                ["fit", "train_size"],
                f"every entry trains on {rules.train_size:,} images; this one asks for "
                f"{spec.fit.fitted_images:,} (set fit.train_size to {rules.train_size})",
            )
        )
    if rules.allowed_layers:
        for index, layer in enumerate(spec.layers):
            if layer.type not in rules.allowed_layers:
                problems.append(
                    _problem(
                        "allowed_layers",
                        ["layers", index, "type"],
                        f"layer [{index}] is a {layer.type}; the challenge allows "
                        f"{', '.join(rules.allowed_layers)}",
                    )
                )
    optimizer = spec.compile.optimizer.type
    if rules.allowed_optimizers and optimizer not in rules.allowed_optimizers:
        problems.append(
            _problem(
                "allowed_optimizers",
                ["compile", "optimizer", "type"],
                f"the optimizer is {optimizer}; the challenge allows "
                f"{', '.join(rules.allowed_optimizers)}",
            )
        )
    return problems
