"""An evaluation's mistakes keep their images' uint8 pixels, given the images as uint8 or as
the notebook's floats (pixels / 255): only the kept mistakes are turned back."""

from __future__ import annotations

import numpy as np

from service.insight.evaluation import evaluate_probabilities


def test_float_images_give_the_mistakes_the_same_pixels_as_uint8() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(200, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=200)
    probabilities = rng.dirichlet(np.ones(10), size=200).astype(np.float32)
    scaled = (pixels / 255.0).astype(np.float32)  # the notebook's images, as Mnist.scaled
    from_uint8 = evaluate_probabilities(probabilities, labels, pixels, mistakes=25)
    from_floats = evaluate_probabilities(probabilities, labels, scaled, mistakes=25)
    assert len(from_uint8.mistakes) == 25
    assert from_floats == from_uint8
    assert all(mistake.image().dtype == np.uint8 for mistake in from_floats.mistakes)
