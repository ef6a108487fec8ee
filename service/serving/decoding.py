"""A request's images -> one float32 [n, 28, 28] batch in [0, 1], within the configured limits.

The normalisation itself is `service.images`; this module applies MAX_PREDICT_BATCH,
MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS and MAX_REQUEST_PIXELS and names each image's field in what
it refuses. Every encoded image's header is read before any of them is decoded, so a request
whose images add up to too many pixels costs no decoding at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.config import Settings
from service.domain import ImagesToPredict
from service.errors import InvalidInput, TooLarge
from service.images import base64_bytes, decode_image, image_pixels, pixels_to_array
from service.mnist import AssumedScale
from service.serving.budget import DecodingBudget


@dataclass(frozen=True)
class ImageDecoder:
    """Checks the limits before any decoding, so nothing oversized reaches Pillow or a model."""

    max_batch: int
    max_bytes: int
    max_pixels: int
    max_request_pixels: int
    budget: DecodingBudget

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageDecoder:
        return cls(
            max_batch=settings.max_predict_batch,
            max_bytes=settings.max_image_bytes,
            max_pixels=settings.max_image_pixels,
            max_request_pixels=settings.max_request_pixels,
            budget=DecodingBudget(
                rate=settings.decode_pixels_per_second, burst=settings.decode_burst_pixels
            ),
        )

    def request_batch(
        self, request: ImagesToPredict, *, client: str
    ) -> tuple[np.ndarray, list[AssumedScale | None]]:
        """The request's images and the pixel scale assumed for each (None for an encoded one);
        `client` (`service.api.deps.client_id`) pays for decoding the encoded ones."""
        self.check_batch_size(request.count)
        arrays: list[np.ndarray] = []
        scales: list[AssumedScale | None] = []
        for field, values in request.pixels:
            array, scale = pixels_to_array(values, request.scale, field=field)
            arrays.append(array)
            scales.append(scale)
        files = [
            (field, base64_bytes(text, max_bytes=self.max_bytes, field=field))
            for field, text in request.encoded
        ]
        arrays.extend(self._decode_all(files, client=client))
        scales.extend([None] * len(files))
        return np.stack(arrays), scales

    def check_batch_size(self, images: int) -> None:
        if images > self.max_batch:
            raise InvalidInput(
                f"{images} images is over the limit of {self.max_batch} per request "
                "(MAX_PREDICT_BATCH); split the batch"
            )

    def upload_batch(self, files: list[tuple[str, bytes]], *, client: str) -> np.ndarray:
        """Uploaded files as (name, content), in order."""
        if not files:
            raise InvalidInput("upload at least one PNG or JPEG file in the form field 'file'")
        if len(files) > self.max_batch:
            raise InvalidInput(
                f"{len(files)} files is over the limit of {self.max_batch} per request "
                "(MAX_PREDICT_BATCH)"
            )
        named = [(f"file {name!r}", data) for name, data in files]
        return np.stack(self._decode_all(named, client=client))

    def _decode_all(self, files: list[tuple[str, bytes]], *, client: str) -> list[np.ndarray]:
        """(field, encoded bytes) -> arrays, once every header says the total is within
        MAX_REQUEST_PIXELS (and each image within MAX_IMAGE_BYTES and MAX_IMAGE_PIXELS) and
        the client's decoding budget has that many pixels left."""
        limits = {"max_bytes": self.max_bytes, "max_pixels": self.max_pixels}
        total = 0
        for field, data in files:
            total += image_pixels(data, **limits, field=field)
            if total > self.max_request_pixels:
                raise TooLarge(
                    f"the images up to {field} have {total:,} pixels in all; a request may "
                    f"have at most {self.max_request_pixels:,} (MAX_REQUEST_PIXELS); send "
                    "smaller images or fewer per request"
                )
        if total:
            self.budget.charge(client, total)
        return [decode_image(data, **limits, field=field) for field, data in files]
