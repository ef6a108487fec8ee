"""What `GET /experiments/{id}` says of a rerun: how its history compares with its original."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.domain import FirstDifference, Reproduction


class FirstDifferencePublic(BaseModel):
    epoch: int
    metric: str = Field(
        description="loss, accuracy, val_loss or val_accuracy; missing: the epoch is in one "
        "history only"
    )
    original: float | None = Field(description="the original's value (null: none or not finite)")
    rerun: float | None = Field(description="the rerun's value (null: none or not finite)")

    @classmethod
    def of(cls, difference: FirstDifference) -> FirstDifferencePublic:
        return cls.model_validate(difference, from_attributes=True)


class ReproductionPublic(BaseModel):
    reproduced: bool | None = Field(
        description="the rerun's history is identical to the original's; null while the two "
        "cannot be compared (either unfinished or cancelled, or the original deleted)"
    )
    explanation: str = Field(description="why, in a sentence")
    first_difference: FirstDifferencePublic | None
    versions_differ: bool | None = Field(
        description="the libraries the two trained with differ (which explains a difference); "
        "null until both have trained"
    )
    original_versions: dict[str, str]

    @classmethod
    def of(cls, reproduction: Reproduction) -> ReproductionPublic:
        difference = reproduction.first_difference
        return cls(
            reproduced=reproduction.reproduced,
            explanation=reproduction.explanation,
            first_difference=FirstDifferencePublic.of(difference) if difference else None,
            versions_differ=reproduction.versions_differ,
            original_versions=reproduction.original_versions,
        )
