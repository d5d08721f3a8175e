"""``restcn-infer stream`` (JSON lines on stdin/stdout) and ``restcn-infer serve`` (WebSocket).

Both speak the protocol of :mod:`restcn_infer.stream_protocol` and batch the due windows of all
streams (and all clients) into one session call. Registered on the ``restcn-infer`` app in
``cli/infer.py``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from restcn_cli.common import domain_errors
from restcn_cli.runtime import (
    AcceptImplausibleOption,
    Device,
    DeviceOption,
    FlipYOption,
    LayoutOption,
    ModelOption,
    ThreadsOption,
    Units,
    UnitsOption,
    input_options,
    open_classifier,
)
from restcn_infer.input_options import InputOptions
from restcn_infer.spec import MAX_WINDOW
from restcn_infer.streaming import StreamClassifier

HopOption = Annotated[int, typer.Option(
    min=1, help="Decide every HOP frames of a stream (from its HOP-th frame on).")]
WindowOption = Annotated[Optional[int], typer.Option(
    min=1, max=MAX_WINDOW, help="Frames of history per decision (default: the model's window); the "
                            "model's window policy maps them to its input length.")]
DecodeOption = Annotated[bool, typer.Option(
    "--decode", help="Add the decoded skeletons of each window to every decision.")]
TopKOption = Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes per decision.")]
IdleOption = Annotated[float, typer.Option(
    min=0.001, help="Forget a stream after this many seconds without a frame.")]


def _stream_classifier(model: Path | None, device: Device, threads: int | None, hop: int,
                       window: int | None, top_k: int, decode: bool, idle_timeout: float,
                       options: InputOptions) -> StreamClassifier:
    """The model's StreamClassifier; a model problem ends the command with exit code 1."""
    classifier = open_classifier(model, device, threads, options)
    with domain_errors():  # --decode on a model without a decoder head
        return StreamClassifier(classifier, hop=hop, window=window, top_k=top_k, decode=decode,
                                idle_timeout_s=idle_timeout, options=options)


def stream(
    model: ModelOption = None,
    hop: HopOption = 8,
    window: WindowOption = None,
    decode: DecodeOption = False,
    top_k: TopKOption = 5,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    idle_timeout: IdleOption = 60.0,
    batch_lines: Annotated[int, typer.Option(
        min=1, max=1 << 16, help="Most input lines handled per session call.")] = 4096,
    layout: LayoutOption = None,
    units: UnitsOption = Units.m,
    flip_y: FlipYOption = False,
    accept_implausible: AcceptImplausibleOption = False,
) -> None:
    """Classify live skeleton streams: JSON frames on stdin, JSON decisions on stdout.

    In, one line per frame: {"stream": ID, "joints": V x 3 or bodies x V x 3 numbers, "t": T,
    "layout": NAME}; a stream keeps the layout and body count of its first frame.

    Out, one line per record: a decision {"stream", "frame", "top", "latency_ms"}; an error
    {"error", "line"} for a malformed line (the stream goes on); one error per stream refused
    as implausible; at end of input (or when reading it fails, or on Ctrl-C) a summary. Exit 0
    (130 after Ctrl-C).
    """
    from restcn_infer.line_reader import iter_line_batches
    from restcn_infer.stream_protocol import StreamStats, process_line_batches

    options = input_options(layout, units, flip_y, accept_implausible)
    engine = _stream_classifier(model, device, threads, hop, window, top_k, decode,
                                idle_timeout, options)
    stats = StreamStats()
    source = getattr(sys.stdin, "buffer", sys.stdin)  # bytes: UTF-8 is checked line by line
    batches = iter_line_batches(source, max_lines=batch_lines)
    try:
        for lines in process_line_batches(engine, batches, stats):
            if lines:
                typer.echo("\n".join(lines))  # one write + flush per batch
    except BrokenPipeError:  # the reader of stdout went away: nobody to answer
        raise typer.Exit(0) from None
    except KeyboardInterrupt:  # Ctrl-C: the summary (with "interrupted") is already out
        typer.echo("restcn-infer stream: interrupted", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # The line reader's thread may be blocked reading stdin and hold its lock: a normal
        # interpreter shutdown would then abort ("could not acquire lock ... at interpreter
        # shutdown"). Everything is written, so leave at once.
        os._exit(130)


def serve(
    host: Annotated[str, typer.Option(
        help="Address to listen on; beyond loopback --token is required.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free).")] = 8765,
    model: ModelOption = None,
    hop: HopOption = 8,
    window: WindowOption = None,
    decode: DecodeOption = False,
    top_k: TopKOption = 5,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    idle_timeout: IdleOption = 60.0,
    layout: LayoutOption = None,
    units: UnitsOption = Units.m,
    flip_y: FlipYOption = False,
    accept_implausible: AcceptImplausibleOption = False,
    max_clients: Annotated[int, typer.Option(
        min=1, help="Connections at most; more are closed with 1013 (try again later).")] = 64,
    max_streams_per_client: Annotated[int, typer.Option(
        min=1, help="Live streams of one connection at most.")] = 256,
    max_pending_per_client: Annotated[int, typer.Option(
        min=1, help="Due windows of one connection waiting at most; beyond it the connection "
                    "is not read from until they are decided (backpressure).")] = 64,
    allow_origin: Annotated[Optional[list[str]], typer.Option(
        "--allow-origin", help="A web page origin allowed to connect, e.g. "
                               "https://app.example (repeatable; '*' allows any). Clients "
                               "without an Origin header (programs) are always allowed.")] = None,
    token: Annotated[Optional[str], typer.Option(
        envvar="RESTCN_SERVE_TOKEN", help="Shared secret clients must send (Authorization: "
        "Bearer TOKEN, or ?token=TOKEN); required beyond loopback. Also read from "
        "RESTCN_SERVE_TOKEN.")] = None,
    certfile: Annotated[Optional[Path], typer.Option(
        exists=True, dir_okay=False, help="TLS certificate (PEM): serve wss://.")] = None,
    keyfile: Annotated[Optional[Path], typer.Option(
        exists=True, dir_okay=False, help="TLS private key (PEM), if not in --certfile.")
    ] = None,
) -> None:
    """Serve the stream protocol over WebSocket, one JSON record per message.

    Every client has its own streams; the due windows of all clients share one session call,
    served round-robin. Needs the serve extra: pip install 'restcn[serve]'.
    """
    from restcn_infer.serve_config import ServeConfig, require_websockets
    from restcn_infer.stream_server import run_server

    with domain_errors():
        require_websockets()  # before the model loads: say what is missing at once
        config = ServeConfig(host=host, port=port, max_clients=max_clients,
                             max_streams_per_client=max_streams_per_client,
                             max_pending_per_client=max_pending_per_client,
                             allow_origins=tuple(allow_origin or ()), token=token,
                             certfile=None if certfile is None else str(certfile),
                             keyfile=None if keyfile is None else str(keyfile))
        config.ssl_context()  # bad TLS files: now, not after the model loaded
    options = input_options(layout, units, flip_y, accept_implausible)
    engine = _stream_classifier(model, device, threads, hop, window, top_k, decode,
                                idle_timeout, options)
    scheme = "wss" if certfile is not None else "ws"

    def started(bound: int) -> None:
        typer.echo(f"restcn-infer serve: listening on {scheme}://{host}:{bound}", err=True)

    try:
        with domain_errors():  # a bind failure is a ServeBindError, "cannot listen on ..."
            asyncio.run(run_server(engine, config, started=started))
    except KeyboardInterrupt:
        typer.echo("restcn-infer serve: stopped", err=True)
