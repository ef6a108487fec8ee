"""Scoring an entry on the public and the private half of the 10,000 test images.

The halves come from a permutation whose seed the challenge draws and never shows: a learner
who sees public scores cannot tell which images they were measured on, and no number measured
on the private half is shown to a student before the close. (MNIST is public; this is about
not tuning to the test set, not about secrecy.)

An entry's evaluation keeps which test images it read right (one bit each); the scores are
that, averaged over each half.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np

TEST_IMAGES = 10_000

PUBLIC_SHARE = 0.5


def draw_seed() -> int:
    return secrets.randbelow(2**62)


def halves(seed: int, total: int = TEST_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """The public and the private half's image indices (sorted), from the challenge's seed."""
    permutation = np.random.default_rng(seed).permutation(total)
    cut = int(total * PUBLIC_SHARE)
    return np.sort(permutation[:cut]), np.sort(permutation[cut:])


@dataclass(frozen=True)
class Scores:
    public: float
    private: float


def score(correct: bytes, seed: int, total: int = TEST_IMAGES) -> Scores:
    """Accuracy on each half, from the packed bits of which test images were read right."""
    hits = np.unpackbits(np.frombuffer(correct, dtype=np.uint8), count=total).astype(bool)
    public, private = halves(seed, total)
    return Scores(public=float(hits[public].mean()), private=float(hits[private].mean()))
