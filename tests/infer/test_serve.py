"""``restcn-infer serve``: two WebSocket clients on loopback, own streams, one batched session."""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import STREAM_CLASSES, assert_same_top, nw_ucla_sequence
from restcn_cli.infer import app
from restcn_infer.classifier import Classifier, Prediction
from restcn_infer.serve_config import ServeConfig, ServeDependencyError, require_websockets
from restcn_infer.stream_server import run_server
from restcn_infer.streaming import StreamClassifier

HOP = 4
FRAMES = 12  # per client: due at frames 4, 8, 12
TIMEOUT_S = 30.0


class GatedClassifier:
    """The real classifier, but its first ``run`` waits for ``gate`` and every batch size is
    recorded, so the test can make windows of both clients pile up behind one call."""

    def __init__(self, classifier: Classifier) -> None:
        self.inner = classifier
        self.metadata = classifier.metadata
        self.spec = classifier.spec
        self.prepare = classifier.prepare
        self.predict = classifier.predict
        self.gate = threading.Event()
        self.batches: list[int] = []
        self.held = 0  # windows in the first call, waiting for the gate

    def run(self, batch, *, decode=False):
        if not self.batches:
            self.held = len(batch)
            self.gate.wait(TIMEOUT_S)
        self.batches.append(len(batch))
        return self.inner.run(batch, decode=decode)


@pytest.fixture(scope="module")
def classifier(tiny_export):
    pytest.importorskip("websockets")
    model = tiny_export(window=16, classes=STREAM_CLASSES, decoder_layers=(1, 4, 7, 10))
    return Classifier(model, device="cpu", threads=1)


async def client_session(port: int, seq: np.ndarray, *, bad_line_at: int | None,
                         multi_line: bool) -> list[dict]:
    """Send ``seq`` as stream "cam" (the same id for both clients) and collect the records."""
    from websockets.asyncio.client import connect

    lines = [json.dumps({"stream": "cam", "joints": seq[0, t].tolist()}) for t in range(FRAMES)]
    if bad_line_at is not None:
        lines.insert(bad_line_at - 1, '{"stream": "cam", "joints": "nope"}')
    records = []
    async with connect(f"ws://127.0.0.1:{port}") as ws:
        if multi_line:
            await ws.send("\n".join(lines[:5]))
            await ws.send("\n".join(lines[5:]))
        else:
            for line in lines:
                await ws.send(line)
        while sum("top" in r for r in records) < FRAMES // HOP:
            records.append(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT_S)))
    return records


async def serve_two_clients(engine: StreamClassifier, gated: GatedClassifier, seqs):
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        run_server(engine, ServeConfig(port=0), started=bound.set_result, stop=stop))
    port = await asyncio.wait_for(bound, TIMEOUT_S)
    clients = asyncio.gather(
        client_session(port, seqs[0], bad_line_at=3, multi_line=False),
        client_session(port, seqs[1], bad_line_at=None, multi_line=True),
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    # both clients' windows queued or held in the first call (however the tick took them)
    while gated.held + engine.num_ready < 4 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    gated.gate.set()
    records = await asyncio.wait_for(clients, TIMEOUT_S)
    while len(engine) and loop.time() < deadline:  # closed connections forget their streams
        await asyncio.sleep(0.01)
    live_after_close = len(engine)
    stop.set()
    await asyncio.wait_for(server, TIMEOUT_S)
    return records, live_after_close


def test_two_clients_get_their_own_decisions_from_shared_batches(classifier, shared_data):
    gated = GatedClassifier(classifier)
    engine = StreamClassifier(gated, hop=HOP, top_k=3)
    seq = nw_ucla_sequence(shared_data)
    seqs = [seq, seq[:, ::-1].copy()]
    (first, second), live_after_close = asyncio.run(serve_two_clients(engine, gated, seqs))

    assert [r for r in first if "error" in r] == [
        {"error": "joints: expected numbers only, got strings, booleans, nulls or objects",
         "line": 3,
         "stream": "cam"}]
    assert not [r for r in second if "error" in r]
    window = classifier.spec.input.window
    for records, source in zip((first, second), seqs):
        decisions = [r for r in records if "top" in r]
        assert [d["frame"] for d in decisions] == [4, 8, 12]
        assert {d["stream"] for d in decisions} == {"cam"}  # the client's own id, not namespaced
        for d in decisions:
            [want] = classifier.classify([source[:, max(0, d["frame"] - window):d["frame"]]],
                                         top_k=3)
            assert_same_top([Prediction(**p) for p in d["top"]], want)
    assert sum(gated.batches) == 6
    assert max(gated.batches) > FRAMES // HOP  # one call held windows of both clients
    assert live_after_close == 0


def test_missing_websockets_gives_an_install_hint(monkeypatch, classifier):
    monkeypatch.setitem(sys.modules, "websockets.asyncio", None)  # import now fails
    with pytest.raises(ServeDependencyError, match=r"pip install 'restcn\[serve\]'"):
        require_websockets()
    result = CliRunner().invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "restcn[serve]" in result.output
