"""A request's images -> one float32 [n, 28, 28] batch in [0, 1], within the configured limits.

The normalisation itself is `service.images`; this module applies MAX_PREDICT_BATCH,
MAX_IMAGE_BYTES and MAX_IMAGE_PIXELS and names each image's field in what it refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.config import Settings
from service.errors import InvalidInput
from service.images import decode_base64_image, decode_image, pixels_to_array
from service.mnist import AssumedScale
from service.schemas.predict import PredictRequest


@dataclass(frozen=True)
class ImageDecoder:
    """Checks the limits before any decoding, so nothing oversized reaches Pillow or a model."""

    max_batch: int
    max_bytes: int
    max_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageDecoder:
        return cls(
            max_batch=settings.max_predict_batch,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
        )

    def request_batch(
        self, request: PredictRequest
    ) -> tuple[np.ndarray, list[AssumedScale | None]]:
        """The request's images and the pixel scale assumed for each (None for an encoded one)."""
        self.check_batch_size(request.batch_size)
        arrays: list[np.ndarray] = []
        scales: list[AssumedScale | None] = []
        if request.image is not None:
            array, scale = pixels_to_array(request.image, request.scale)
            arrays.append(array)
            scales.append(scale)
        for index, values in enumerate(request.images or []):
            array, scale = pixels_to_array(values, request.scale, field=f"images[{index}]")
            arrays.append(array)
            scales.append(scale)
        encoded = [request.image_base64] if request.image_base64 is not None else []
        fields = ["image_base64"] if encoded else []
        for index, text in enumerate(request.images_base64 or []):
            encoded.append(text)
            fields.append(f"images_base64[{index}]")
        for text, field in zip(encoded, fields, strict=True):
            arrays.append(
                decode_base64_image(
                    text, max_bytes=self.max_bytes, max_pixels=self.max_pixels, field=field
                )
            )
            scales.append(None)
        return np.stack(arrays), scales

    def check_batch_size(self, images: int) -> None:
        if images > self.max_batch:
            raise InvalidInput(
                f"{images} images is over the limit of {self.max_batch} per request "
                "(MAX_PREDICT_BATCH); split the batch"
            )

    def upload_batch(self, files: list[tuple[str, bytes]]) -> np.ndarray:
        """Uploaded files as (name, content), in order."""
        if not files:
            raise InvalidInput("upload at least one PNG or JPEG file in the form field 'file'")
        if len(files) > self.max_batch:
            raise InvalidInput(
                f"{len(files)} files is over the limit of {self.max_batch} per request "
                "(MAX_PREDICT_BATCH)"
            )
        return np.stack(
            [
                decode_image(
                    data,
                    max_bytes=self.max_bytes,
                    max_pixels=self.max_pixels,
                    field=f"file {name!r}",
                )
                for name, data in files
            ]
        )
