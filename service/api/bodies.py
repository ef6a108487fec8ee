"""Reading a request's body whole beneath the framework, and handing it on: what the body-size
guard and the inference hot path share."""

from __future__ import annotations

from starlette.types import Message, Receive


class OverLimit(Exception):
    """The body went past the limit given to `read_body`; nothing more of it was read."""


async def read_body(receive: Receive, max_bytes: int | None = None) -> bytes | None:
    """The whole body; None when the client went away first. Past `max_bytes`, OverLimit."""
    chunks: list[bytes] = []
    received = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return None
        chunk = message.get("body", b"")
        received += len(chunk)
        if max_bytes is not None and received > max_bytes:
            raise OverLimit
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app: the body already read, then whatever the server says next (a
    disconnect, once the answer is sent)."""
    replayed = False

    async def replaying() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replaying
