"""The stream protocol over WebSocket, for many clients at once (``restcn-infer serve``).

Each text message holds one or more JSON lines of :mod:`restcn_infer.stream_protocol`; each
record goes back as its own message. Stream ids are namespaced per connection (a client's
"cam1" is never another client's "cam1"), error records carry the connection's line number, and
a closed connection's streams are forgotten.

One :class:`StreamClassifier` serves every client. Frames are pushed on the event loop; a tick
task takes whatever windows are due across all clients and runs them as one batched session
call in a worker thread, so frames keep arriving (and form the next batch) while the model runs.
Each client has a bounded outbox drained by its own writer task: a client that stops reading is
disconnected instead of stalling the others.

``websockets`` is an optional dependency (``pip install 'restcn[serve]'``), imported only here.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from restcn_infer.errors import MissingDependencyError
from restcn_infer.stream_protocol import (
    MAX_LINE_CHARS,
    StreamStats,
    decision_record,
    dumps,
    feed_line,
)
from restcn_infer.streaming import StreamClassifier

#: Records waiting for one client at most before it is disconnected as too slow.
MAX_OUTBOX = 10_000
#: Idle streams are looked for at least this often (seconds) even without traffic.
IDLE_CHECK_S = 1.0


class ServeDependencyError(MissingDependencyError):
    """The optional ``websockets`` package is missing."""


def require_websockets() -> Any:
    """The ``websockets.asyncio.server`` module, or :class:`ServeDependencyError` with a hint."""
    try:
        from websockets.asyncio import server
    except ImportError:
        raise ServeDependencyError(
            "restcn-infer serve needs the 'websockets' package (>= 13): "
            "pip install 'restcn[serve]'"
        ) from None
    return server


class _Client:
    """One connection: its line counter, counts (and stream keys) and outbox."""

    def __init__(self, ws: Any, number: int) -> None:
        self.ws = ws
        self.number = number
        self.lines = 0
        self.stats = StreamStats()
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=MAX_OUTBOX)

    def send(self, record: dict[str, Any]) -> None:
        try:
            self.outbox.put_nowait(dumps(record))
        except asyncio.QueueFull:  # not reading its decisions: let it go, keep the others
            asyncio.ensure_future(self.ws.close(1008, "client too slow to read its decisions"))

    async def write_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await self.ws.send(await self.outbox.get())
        except ConnectionClosed:  # the reader side sees the close and cleans up
            return


class StreamServer:
    """Connection handling and the batching tick around one :class:`StreamClassifier`."""

    def __init__(self, engine: StreamClassifier) -> None:
        self.engine = engine
        self.decoder_layers = list(engine.classifier.metadata.decoder_layers)
        self.clients: dict[int, _Client] = {}
        self._numbers = itertools.count(1)
        self._wake = asyncio.Event()

    async def handle(self, ws: Any) -> None:
        """Serve one connection until it closes."""
        client = _Client(ws, next(self._numbers))
        self.clients[client.number] = client
        writer = asyncio.create_task(client.write_loop())
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    message = message.decode("utf-8", errors="replace")
                for text in message.splitlines():
                    client.lines += 1
                    error = feed_line(self.engine, text, client.lines, client.stats,
                                      namespace=client.number, source=f"client {client.number}")
                    if error is not None:
                        client.send(error)
                if self.engine.num_ready:
                    self._wake.set()
        finally:
            del self.clients[client.number]
            for key in client.stats.stream_ids:
                self.engine.forget(key)
            writer.cancel()  # the socket is closed: queued records have nowhere to go

    async def tick(self) -> None:
        """Forever: wait for due windows, decide all of them in one call, route the records."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=IDLE_CHECK_S)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            ready = self.engine.take_ready()  # also forgets idle streams
            if not ready:
                continue
            decisions = await asyncio.to_thread(self.engine.decide, ready)
            for d in decisions:
                number, stream = d.stream
                client = self.clients.get(number)
                if client is not None:  # gone meanwhile: nobody to tell
                    client.stats.decisions += 1
                    client.send(decision_record(d, stream=stream,
                                                decoder_layers=self.decoder_layers))


async def run_server(engine: StreamClassifier, host: str = "127.0.0.1", port: int = 8765, *,
                     started: Callable[[int], None] | None = None,
                     stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (forever without one).

    Args:
        started: called with the bound port once listening (useful with ``port=0``).

    Raises:
        ServeDependencyError: ``websockets`` is not installed.
        OSError: the address cannot be bound.
    """
    server_module = require_websockets()
    server = StreamServer(engine)
    ticker = asyncio.create_task(server.tick())
    try:
        async with server_module.serve(server.handle, host, port,
                                       max_size=MAX_LINE_CHARS) as listening:
            if started is not None:
                started(listening.sockets[0].getsockname()[1])
            await (stop.wait() if stop is not None else asyncio.Future())
    finally:
        ticker.cancel()
