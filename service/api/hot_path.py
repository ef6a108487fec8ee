"""The two inference endpoints' common case answered beneath the framework: POST /predict with
one image as pixel lists, and the v2 infer of a few images, for a model that is warm.

A profile of the API under wrk put half of a /predict's CPU in FastAPI's routing, dependency
solving and pydantic validation of a body whose shape is almost always the same:
`{"image": [...], "model": "...", "scale": "..."}`. This pure ASGI layer parses that body once
(orjson), checks it exactly as `PredictRequest` would, and answers the bytes the route would;
for the v2 infer it runs the route's own decoding and encoding (`service.serving.oip`).
Anything else (another field, a batch, an encoded image, a model not loaded, a bad value, a
version that does not match, reads protected by a token or kept to one's own) is handed to
the route unchanged, so every error and its message comes from one place: the routes and what
they call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast, get_args

import orjson
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.bodies import read_body, replay
from service.api.routes import predict, v2
from service.domain import BEST, REFERENCE_PATTERN, ServableModel
from service.errors import ServiceError
from service.images import pixels_to_array
from service.mnist import PIXELS, SIDE, Scale
from service.runtime import Runtime
from service.schemas.predict import PredictResponse
from service.serving import oip
from service.usecases.prediction import Predictions, few_enough_for_the_loop

PREDICT = "/predict"
V2_MODELS = "/v2/models/"
INFER = "/infer"
VERSIONS = "/versions/"
MAX_VERSION_LENGTH = 64  # as the route's `Version` path parameter
FIELDS = frozenset({"image", "model", "scale"})
SCALES = frozenset(get_args(Scale))
JSON = b"application/json"
V2_HEADER_LENGTH = oip.HEADER_LENGTH.lower().encode()

Answer = tuple[bytes, list[tuple[bytes, bytes]]]  # body, headers but content-length
Handler = Callable[[Predictions, Scope, bytes], Awaitable[Answer | None]]


class HotPaths:
    """Sits inside the body-size guard and the request metrics, which see every request alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # What the request metrics label an answer with, as if the route had given it.
        self.predict_route = _route(predict.router, PREDICT)
        self.infer_route = _route(v2.router, "/v2/models/{name}/infer")
        self.version_route = _route(v2.router, "/v2/models/{name}/versions/{version}/infer")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._handler(scope)
        if handler is None:
            await self.app(scope, receive, send)
            return
        route, answer_with = handler
        body = await read_body(receive)
        if body is None:
            return  # the client went away
        runtime: Runtime = scope["app"].state.runtime
        answer = None
        settings = runtime.settings
        # The token, and under CLASS_READS=own whose models may answer, are the route's to check.
        if not (settings.protect_reads or settings.class_reads == "own"):
            answer = await answer_with(runtime.predictions, scope, body)
        if answer is None:
            await self.app(scope, replay(body, receive), send)
            return
        content, headers = answer
        scope["route"] = route
        headers.append((b"content-length", b"%d" % len(content)))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _handler(self, scope: Scope) -> tuple[APIRoute, Handler] | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        if path == PREDICT:
            return self.predict_route, _predict
        if path.startswith(V2_MODELS) and path.endswith(INFER):
            route = self.version_route if VERSIONS in path else self.infer_route
            return route, _infer
        return None


async def _predict(predictions: Predictions, scope: Scope, body: bytes) -> Answer | None:
    """POST /predict's answer when the body is one image in pixel lists for a warm model."""
    if _header(scope, b"content-type") != JSON:
        return None
    fields = _common_predict_body(body)
    if fields is None:
        return None
    model = predictions.warm(fields.get("model", BEST))
    if model is None:
        return None
    try:
        image, scale = pixels_to_array(fields["image"], fields.get("scale", "auto"))
    except ServiceError:
        return None  # the route says what is wrong, in its words
    probabilities = await predictions.forward_warm(model, image[None])
    answer = PredictResponse.answer(model, probabilities[0], scale)
    return answer.model_dump_json().encode(), [(b"content-type", JSON)]


def _common_predict_body(body: bytes) -> dict[str, Any] | None:
    """The body's fields when it is one image in pixel lists that `PredictRequest` accepts."""
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(fields) is not dict or "image" not in fields or not fields.keys() <= FIELDS:
        return None
    image = fields["image"]
    if type(image) is not list or len(image) not in (SIDE, PIXELS):
        return None
    model = fields.get("model", BEST)
    if type(model) is not str or REFERENCE_PATTERN.fullmatch(model) is None:
        return None
    scale = fields.get("scale", "auto")
    if type(scale) is not str or scale not in SCALES:
        return None
    return fields


async def _infer(predictions: Predictions, scope: Scope, body: bytes) -> Answer | None:
    """The v2 infer's answer for a few images and a warm model of the version asked for."""
    name, versioned, version = scope["path"][len(V2_MODELS) : -len(INFER)].partition(VERSIONS)
    if REFERENCE_PATTERN.fullmatch(name) is None:
        return None
    if versioned and not (0 < len(version) <= MAX_VERSION_LENGTH and "/" not in version):
        return None
    model: ServableModel | None = predictions.warm(name)
    if model is None or not model.is_version(version or None):
        return None
    header = _header(scope, V2_HEADER_LENGTH)
    try:
        request = oip.decode_request(body, None if header is None else header.decode("latin-1"))
    except ServiceError:
        return None
    if not few_enough_for_the_loop(len(request.images)):
        return None
    probabilities = await predictions.forward_warm(model, request.images)
    response = oip.encode_response(
        model_name=name,
        model_version=model.experiment_id,
        request=request,
        probabilities=probabilities,
    )
    headers = [(b"content-type", response.media_type.encode())]
    headers += [(key.lower().encode(), value.encode()) for key, value in response.headers.items()]
    return response.body, headers


def _route(router: APIRouter, path: str) -> APIRoute:
    return next(
        route
        for route in router.routes
        if isinstance(route, APIRoute) and route.path == path and "POST" in (route.methods or ())
    )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return cast(bytes, value)
    return None
