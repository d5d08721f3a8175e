"""The stream protocol over WebSocket, for many clients at once (``restcn-infer serve``).

Each text message holds one or more JSON lines of :mod:`restcn_infer.stream_protocol`; each
record goes back as its own message. Stream ids are namespaced per connection (a client's
"cam1" is never another client's "cam1"), error records carry the connection's line number, and
a closed connection's streams and queued windows are forgotten.

One :class:`StreamClassifier` serves every client. Frames are pushed on the event loop, the lines
of a message together (:func:`~restcn_infer.stream_protocol.feed_lines`: one
:meth:`~StreamClassifier.push_many` for as many lines as the bounds below have room for); a tick
task takes due windows of all clients, round-robin and at most ``max_batch`` per call, decides
them in one session call *and renders their JSON* in a worker thread (a decoded decision is
~140 KB of text), then routes the lines. What keeps it serving under hostile or careless use:

- **failures**: a failing session call becomes error records for the windows it held (logged
  with its traceback, :meth:`StreamClassifier.decide_safely`); any other failure of a tick is
  logged, answered with error records to the clients whose windows it held, and the loop goes
  on;
- **bounded work**: at most ``max_pending_per_client`` queued windows per client and
  ``max_pending`` in total; a client at its bound is not read from until its windows are
  decided (backpressure down to TCP), so a flooding client slows itself, not the others;
- **slow consumers**: a client's outbox holds ``max_outbox`` records; above half of it the
  client's frames are not read, a full outbox or a send blocked for ``send_timeout_s`` closes
  the connection with code 1008 and the reason;
- **limits**: ``max_clients`` connections (more are closed with 1013, "try again later"),
  ``max_streams_per_client`` streams each;
- **exposure**: browsers' ``Origin`` must be listed (``allow_origins``; requests without one,
  from programs, are accepted), a ``token`` is required to bind beyond loopback and then asked
  of every client (``Authorization: Bearer TOKEN`` or ``?token=TOKEN``), and TLS serves
  ``wss://`` from ``certfile``/``keyfile``.

``websockets`` is an optional dependency (``pip install 'restcn[serve]'``), imported only here.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from restcn_infer.line_reader import MAX_LINE_BYTES
from restcn_infer.serve_config import ServeBindError, ServeConfig, require_websockets
from restcn_infer.stream_decide import failed_decisions
from restcn_infer.stream_protocol import (
    StreamStats,
    dumps,
    feed_lines,
    render_decision,
)
from restcn_infer.streaming import PendingWindow, StreamClassifier, StreamDecision

log = logging.getLogger("restcn_infer")

#: Idle streams are looked for at least this often (seconds) even without traffic.
IDLE_CHECK_S = 1.0
#: Lines of one message handled at once (one push_many) before the event loop is given a turn.
LINES_PER_TURN = 256
class _Client:
    """One connection: its line counter, counts, outbox and the event that lets it read on."""

    def __init__(self, ws: Any, number: int, config: ServeConfig) -> None:
        self.ws = ws
        self.number = number
        self.lines = 0
        self.stats = StreamStats()
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=config.max_outbox)
        self.high_water = max(1, config.max_outbox // 2)
        self.room = asyncio.Event()
        self.closing = False
        self.send_timeout_s = config.send_timeout_s

    def send(self, line: str) -> None:
        try:
            self.outbox.put_nowait(line)
        except asyncio.QueueFull:  # not reading its records: let it go, keep the others
            self.close(1008, "client too slow to read its records")

    def close(self, code: int, reason: str) -> None:
        if not self.closing:
            self.closing = True
            log.warning("closing client %d: %s", self.number, reason)
            asyncio.ensure_future(self.ws.close(code, reason))

    async def write_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                line = await self.outbox.get()
                try:
                    await asyncio.wait_for(self.ws.send(line), self.send_timeout_s)
                except asyncio.TimeoutError:
                    self.close(1008, f"client too slow: a send blocked for "
                                     f"{self.send_timeout_s:g} s")
                    return
                self.room.set()
        except ConnectionClosed:  # the reader side sees the close and cleans up
            return


class StreamServer:
    """Connection handling and the batching tick around one :class:`StreamClassifier`
    (whose per-client limits it sets from ``config``)."""

    def __init__(self, engine: StreamClassifier, config: ServeConfig | None = None) -> None:
        self.engine = engine
        self.config = config or ServeConfig()
        # config.max_pending is kept by backpressure (a client at a bound is not read from);
        # the engine's own bound, which drops windows, stays a last resort above it.
        engine.set_limits(max_streams_per_owner=self.config.max_streams_per_client,
                          max_pending=max(engine.max_pending, self.config.max_pending),
                          max_pending_per_owner=self.config.max_pending_per_client)
        self.decoder_layers = list(engine.classifier.metadata.decoder_layers)
        self.clients: dict[int, _Client] = {}
        self._numbers = itertools.count(1)
        self._wake = asyncio.Event()
        self.tick_failures = 0

    async def serve(self, *, started: Callable[[int], None] | None = None,
                    stop: asyncio.Event | None = None) -> None:
        """Listen on ``config.host:port`` and serve until ``stop`` is set (see
        :func:`run_server`)."""
        config = self.config
        server_module = require_websockets()
        context = config.ssl_context()
        try:  # binding: the one place an OSError means the address (in use, not here)
            listening = await server_module.serve(
                self.handle, config.host, config.port, max_size=MAX_LINE_BYTES,
                origins=config.origins, process_request=self.process_request, ssl=context)
        except OSError as exc:
            raise ServeBindError(f"cannot listen on {config.host}:{config.port}: "
                                 f"{exc.strerror or exc}") from None
        ticker = asyncio.create_task(self.tick())
        try:
            if started is not None:
                started(listening.sockets[0].getsockname()[1])
            await (stop.wait() if stop is not None else asyncio.Future())
        finally:
            ticker.cancel()
            listening.close()
            await listening.wait_closed()

    # -- admission ----------------------------------------------------------------------------

    def process_request(self, connection: Any, request: Any) -> Any:
        """``websockets``' handshake hook: the token, when one is set (401 without it)."""
        token = self.config.token
        if token is None:
            return None
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):].strip()
        else:
            given = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        if hmac.compare_digest(given.encode(), token.encode()):
            return None
        return connection.respond(HTTPStatus.UNAUTHORIZED, "a valid token is required\n")

    # -- one connection -----------------------------------------------------------------------

    def _full(self, client: _Client) -> bool:
        """Whether the client is at a bound: its pending windows, its outbox, the total."""
        engine, config = self.engine, self.config
        return (engine.pending_of(client.number) >= config.max_pending_per_client
                or engine.num_ready >= config.max_pending
                or client.outbox.qsize() >= client.high_water)

    def _room_for(self, client: _Client) -> int:
        """Lines the client may send on before reaching a bound (at least 1, at most
        :data:`LINES_PER_TURN`)."""
        engine, config = self.engine, self.config
        room = min(config.max_pending_per_client - engine.pending_of(client.number),
                   config.max_pending - engine.num_ready,
                   client.high_water - client.outbox.qsize(), LINES_PER_TURN)
        return max(1, room)

    async def _room(self, client: _Client) -> None:
        """Wait while the client is at a bound (its frames are not read meanwhile)."""
        while not client.closing and self._full(client):
            client.room.clear()
            self._wake.set()
            try:
                await asyncio.wait_for(client.room.wait(), IDLE_CHECK_S)
            except asyncio.TimeoutError:
                pass

    async def handle(self, ws: Any) -> None:
        """Serve one connection until it closes."""
        if len(self.clients) >= self.config.max_clients:
            await ws.close(1013, f"server full ({self.config.max_clients} clients); try later")
            return
        client = _Client(ws, next(self._numbers), self.config)
        self.clients[client.number] = client
        log.info("client %d connected from %s", client.number, _peer(ws))
        writer = asyncio.create_task(client.write_loop())
        try:
            async for message in ws:
                await self._room(client)
                if client.closing:
                    break
                await self._message(client, message)
        finally:
            del self.clients[client.number]
            self.engine.forget_owner(client.number)
            writer.cancel()  # the socket is closed: queued records have nowhere to go
            log.info("client %d disconnected: %s", client.number,
                     ", ".join(f"{k} {v}" for k, v in client.stats.summary_record()["summary"]
                               .items()))

    async def _message(self, client: _Client, message: str | bytes) -> None:
        # A binary message is split into lines before decoding: a line that is not UTF-8 is
        # its own error record (parse_frame says so), the lines beside it still count.
        lines: list[str] | list[bytes] = message.split(b"\n" if isinstance(message, bytes)
                                                      else "\n")
        if lines and not lines[-1]:
            lines.pop()
        done = 0
        while done < len(lines):
            if self._full(client):  # backpressure: a message may hold many lines
                await self._room(client)
                if client.closing:
                    return
            # One push_many for as many lines as the bounds have room for: a line queues one
            # window and one record at most, so no bound is passed, as line by line.
            part = lines[done:done + self._room_for(client)]
            done += len(part)
            numbered = list(enumerate(part, client.lines + 1))
            client.lines += len(part)
            for record in feed_lines(self.engine, numbered, client.stats,
                                     namespace=client.number, source=f"client {client.number}"):
                if record is not None:
                    client.send(dumps(record))
            if self.engine.pending_of(client.number):
                self._wake.set()
            if done < len(lines):
                await asyncio.sleep(0)  # a long message does not hold the loop
                if client.closing:
                    return

    # -- decisions ----------------------------------------------------------------------------

    def _decide_and_render(self, ready: list[PendingWindow]
                           ) -> list[tuple[int, StreamDecision, str]]:
        """In a worker thread: ``(client number, decision, its JSON line)`` per window."""
        return self._render(self.engine.decide_safely(ready))

    def _render(self, decisions: list[StreamDecision]) -> list[tuple[int, StreamDecision, str]]:
        out = []
        for d in decisions:
            number, stream = d.stream  # namespaced by the client's number
            out.append((number, d, render_decision(d, stream=stream,
                                                   decoder_layers=self.decoder_layers)))
        return out

    async def tick(self) -> None:
        """Forever: wait for due windows, decide a round-robin batch of them in a worker
        thread, route the lines; a failure is logged and answered, and the loop goes on."""
        while True:
            if not self.engine.num_ready:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=IDLE_CHECK_S)
                except asyncio.TimeoutError:
                    pass
            self._wake.clear()
            ready: list[PendingWindow] = []
            try:
                ready = self.engine.take_ready(self.engine.max_batch)  # also forgets idle ones
                if ready:
                    lines = await asyncio.to_thread(self._decide_and_render, ready)
                    self._route(lines)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one failure
                self.tick_failures += 1
                log.exception("the decision loop failed on %d windows; serving goes on",
                              len(ready))
                self._route(self._render(failed_decisions(ready, exc)))  # answered all
            for client in self.clients.values():
                client.room.set()

    def _route(self, lines: list[tuple[int, StreamDecision, str]]) -> None:
        for number, decision, line in lines:
            client = self.clients.get(number)
            if client is not None:  # gone meanwhile: nobody to tell
                client.stats.count(decision)
                client.send(line)

def _peer(ws: Any) -> str:
    """The client's address as ``host:port``, or ``?``."""
    address = getattr(ws, "remote_address", None)
    return ":".join(map(str, address[:2])) if address else "?"


async def run_server(engine: StreamClassifier, config: ServeConfig | None = None, *,
                     started: Callable[[int], None] | None = None,
                     stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (forever without one): :meth:`StreamServer.serve`.

    Args:
        config: address, limits, origins, token and TLS (:class:`ServeConfig`).
        started: called with the bound port once listening (useful with ``port=0``).

    Raises:
        ServeDependencyError: ``websockets`` is not installed.
        ServeConfigError: unusable TLS files.
        ServeBindError: the address cannot be bound.
    """
    await StreamServer(engine, config).serve(started=started, stop=stop)


__all__ = ["StreamServer", "run_server"]
