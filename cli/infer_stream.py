"""``restcn-infer stream`` (JSON lines on stdin/stdout) and ``restcn-infer serve`` (WebSocket).

Both speak the protocol of :mod:`restcn_infer.stream_protocol` and batch the due windows of all
streams (and all clients) into one session call. Registered on the ``restcn-infer`` app in
``cli/infer.py``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from restcn_cli.common import domain_errors, fail
from restcn_cli.runtime import (
    Device,
    DeviceOption,
    ModelOption,
    ThreadsOption,
    open_classifier,
)
from restcn_infer.stream_protocol import StreamStats, dumps, iter_line_batches, process_line_batches
from restcn_infer.streaming import StreamClassifier

HopOption = Annotated[int, typer.Option(
    min=1, help="Decide every HOP frames of a stream (from its HOP-th frame on).")]
WindowOption = Annotated[Optional[int], typer.Option(
    min=1, help="Frames of history per decision (default: the model's window); the model's "
                "window policy maps them to its input length.")]
DecodeOption = Annotated[bool, typer.Option(
    "--decode", help="Add the decoded skeletons of each window to every decision.")]
TopKOption = Annotated[int, typer.Option("--top-k", "-k", min=1, help="Classes per decision.")]
IdleOption = Annotated[float, typer.Option(
    min=0.001, help="Forget a stream after this many seconds without a frame.")]


def _stream_classifier(model: Path | None, device: Device, threads: int | None, hop: int,
                       window: int | None, top_k: int, decode: bool,
                       idle_timeout: float) -> StreamClassifier:
    """The model's StreamClassifier; a model problem ends the command with exit code 1."""
    classifier = open_classifier(model, device, threads)
    with domain_errors():  # --decode on a model without a decoder head
        return StreamClassifier(classifier, hop=hop, window=window, top_k=top_k, decode=decode,
                                idle_timeout_s=idle_timeout)


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
        min=1, help="Most input lines handled per session call.")] = 4096,
) -> None:
    """Classify live skeleton streams: JSON frames on stdin, JSON decisions on stdout.

    In, one line per frame: {"stream": ID, "joints": V x 3 or bodies x V x 3 numbers, "t": T}.

    Out, one line per record: a decision {"stream", "frame", "top", "latency_ms"}; an error
    {"error", "line"} for a malformed line (the stream goes on); at end of input a summary.
    """
    engine = _stream_classifier(model, device, threads, hop, window, top_k, decode, idle_timeout)
    stats = StreamStats()
    batches = iter_line_batches(sys.stdin, max_lines=batch_lines)
    for records in process_line_batches(engine, batches, stats):
        if records:
            typer.echo("\n".join(dumps(r) for r in records))  # one write + flush per batch


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free).")] = 8765,
    model: ModelOption = None,
    hop: HopOption = 8,
    window: WindowOption = None,
    decode: DecodeOption = False,
    top_k: TopKOption = 5,
    device: DeviceOption = Device.auto,
    threads: ThreadsOption = None,
    idle_timeout: IdleOption = 60.0,
) -> None:
    """Serve the stream protocol over WebSocket, one JSON record per message.

    Every client has its own streams; the due windows of all clients share one session call.
    Needs the serve extra: pip install 'restcn[serve]'.
    """
    from restcn_infer.stream_server import require_websockets, run_server

    with domain_errors():
        require_websockets()  # before the model loads: say what is missing at once
    engine = _stream_classifier(model, device, threads, hop, window, top_k, decode, idle_timeout)

    def started(bound: int) -> None:
        typer.echo(f"restcn-infer serve: listening on ws://{host}:{bound}", err=True)

    try:
        asyncio.run(run_server(engine, host, port, started=started))
    except OSError as exc:  # port in use, address not available
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        typer.echo("restcn-infer serve: stopped", err=True)
