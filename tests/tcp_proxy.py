"""A TCP proxy in front of a real dependency, to fail it on demand: the tests' and benches' one.

It listens on 127.0.0.1 as soon as it is built, and forwards to `host:port`. It fails in two ways:

- `cut()` resets every open connection and stops listening, so clients see a reset, then a
  refused connection: what a crashed or restarted server looks like.
- `blackhole()` keeps accepting connections but nothing gets through either way: a host that
  silently drops traffic, so clients wait until their own timeouts fire. Bytes are held, not
  dropped, so a connection that survives the silence carries on intact after `restore()`.

`restore()` listens again on the same port and forwards again; `outage()` and `cut_for()` wrap
a cut and its restore. The proxy runs its own asyncio loop in a thread, so a test or a bench
script drives it with plain calls; `close()` (or leaving its `with` block) ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from types import TracebackType
from typing import Any

CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0  # the first listen picks a free one, and every later listen reuses it
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )
        self._server: asyncio.Server | None = None
        self.cuts = 0  # a connection accepted before the latest cut must not outlive it
        self._transports: set[asyncio.Transport] = set()
        self._flowing = asyncio.Event()  # cleared while black-holed: every pump waits on it
        self._thread.start()
        self.restore()

    def restore(self) -> None:
        """Listen again if cut, and let traffic through again (held bytes first)."""
        self._call(self._switch(listening=True, flowing=True))

    def cut(self) -> None:
        """Reset every open connection and refuse new ones until `restore()`."""
        self._call(self._switch(listening=False, flowing=False))

    def blackhole(self) -> None:
        """Accept connections but pass nothing, either way, until `restore()`."""
        self._call(self._switch(listening=True, flowing=False))

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        self.cut()
        try:
            yield
        finally:
            self.restore()

    def cut_for(self, seconds: float) -> None:
        with self.outage():
            time.sleep(seconds)

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    # The loop's side ---------------------------------------------------------------------------
    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _switch(self, *, listening: bool, flowing: bool) -> None:
        if listening:
            await self._listen()
        else:
            await self._go_down()
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                functools.partial(self._accept, self.cuts),
                "127.0.0.1",
                self.port,
                reuse_address=True,
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def _go_down(self) -> None:
        self.cuts += 1
        server, self._server = self._server, None
        if server is not None:
            # Let sockets the loop has just accepted attach to the server first: Python 3.11
            # leaks one that attaches after `close()`, open but never served nor reset.
            await asyncio.sleep(0)
            server.close()
        for transport in list(self._transports):
            _reset(transport)
        self._transports.clear()
        if server is not None:
            await server.wait_closed()  # after the resets: 3.12 waits for connections too

    async def _shutdown(self) -> None:
        await self._go_down()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _accept(
        self, listened_since: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        client = writer.transport
        assert isinstance(client, asyncio.Transport)
        if listened_since != self.cuts:
            _reset(client)  # accepted just as a cut began, handed over only after it
            return
        self._transports.add(client)
        transports = [client]
        try:
            await self._flowing.wait()  # black-holed: accepted, and nothing answers yet
            if client.is_closing():
                return  # cut while it waited
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            except OSError:
                _reset(client)  # the target itself is down: so is the connection
                return
            upstream = upstream_writer.transport
            assert isinstance(upstream, asyncio.Transport)
            self._transports.add(upstream)
            transports.append(upstream)
            await asyncio.gather(
                self._pump(reader, upstream_writer),
                self._pump(upstream_reader, writer),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # closing: end quietly (Python 3.11's server callback chokes on a cancelled task)
        finally:
            for transport in transports:
                self._transports.discard(transport)
                transport.abort()  # both ways ended (or already reset): a plain close

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(CHUNK):
            await self._flowing.wait()  # black-holed: hold the bytes until restored
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()


def _reset(transport: asyncio.BaseTransport) -> None:
    """Close with an RST, not a FIN: the peer learns at once that the connection is gone, as
    when a server dies (`abort()` alone sends a FIN unless unread bytes are pending)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
