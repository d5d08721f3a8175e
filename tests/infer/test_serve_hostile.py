"""``restcn-infer serve`` exposed to hostile or careless clients: a flooding client beside a fair
one, a failing decision loop, origins, tokens, TLS, too many clients, slow consumers.

Latency is counted in session calls, not seconds (no timed assertions): the fair client's
window must be decided by the next call or the one after, however hard the other client floods.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from bodies import body_sequence
from helpers import FakeClassifier
from restcn_cli.infer import app
from restcn_infer.serve_config import ServeConfig, ServeConfigError
from restcn_infer.stream_server import StreamServer, _Client
from restcn_infer.streaming import StreamClassifier

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

TIMEOUT_S = 60.0
TOKEN = "t0k3n-with-enough-characters"


class CountingClassifier(FakeClassifier):
    """The numpy stand-in, counting its session calls (the clock of these tests)."""

    def __init__(self, fail_calls: tuple[int, ...] = (), **kw) -> None:
        super().__init__(**kw)
        self.calls = 0
        self.fail_calls = fail_calls

    def run(self, batch, *, decode=False):
        self.calls += 1
        if self.calls in self.fail_calls:
            raise RuntimeError("the provider failed")
        return super().run(batch, decode=decode)


def frame_text(stream: str, frame: np.ndarray) -> str:
    return json.dumps({"stream": stream, "joints": frame.tolist()})


async def serving(server: StreamServer, body):
    """Run ``server`` on a free port while ``body(port)`` runs; returns its result."""
    stop = asyncio.Event()
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(server.serve(started=bound.set_result, stop=stop))
    try:
        port = await asyncio.wait_for(bound, TIMEOUT_S)
        return await asyncio.wait_for(body(port), TIMEOUT_S)
    finally:
        stop.set()
        await asyncio.wait_for(task, TIMEOUT_S)


class WatchedEngine(StreamClassifier):
    """Records, per window, the session call count when it was queued and when decided."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.started = 0  # session calls started
        self.queued_at: dict = {}
        self.waits: dict = {}  # (stream, frame) -> calls from queued to decided
        self.most_pending = 0

    def _enqueue(self, pending):
        self.queued_at[(pending.stream, pending.frame)] = self.started
        super()._enqueue(pending)
        self.most_pending = max(self.most_pending, self.pending_of(pending.owner))

    def decide(self, ready):
        self.started += 1
        for p in ready:
            key = (p.stream, p.frame)
            self.waits[key] = self.started - self.queued_at[key]
        return super().decide(ready)


def test_a_flooding_client_does_not_delay_a_fair_one():
    """The flooder keeps 64 windows queued and a call takes 4: first-come-first-served would
    leave the fair client's window behind up to 16 calls; round-robin decides it in the next
    call (or the one after, when a batch was taken just before it was queued)."""
    engine = WatchedEngine(FakeClassifier(), hop=1, max_batch=4)
    server = StreamServer(engine, ServeConfig(port=0, max_pending_per_client=64))
    frames = body_sequence(40)[0]

    async def flood(port):
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            async def drain():
                async for _ in ws:
                    pass
            reader = asyncio.create_task(drain())
            try:
                for start in range(0, 4000, 50):  # as fast as the server takes it
                    await ws.send("\n".join(frame_text("f", frames[i % 40])
                                            for i in range(start, start + 50)))
            finally:
                reader.cancel()

    async def fair(port):
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            for i in range(15):
                await ws.send(frame_text("cam", frames[i]))
                while "top" not in (record := json.loads(await ws.recv())):
                    pass
                assert record["frame"] == i + 1

    async def both(port):
        flooder = asyncio.create_task(flood(port))
        while engine.pending_of(1) < 32:  # the flood is under way
            await asyncio.sleep(0.01)
        await fair(port)
        flooded = engine.pending_of(1)
        flooder.cancel()
        return flooded

    flooded = asyncio.run(serving(server, both))
    fair_waits = [w for (stream, _), w in engine.waits.items() if stream[0] == 2]
    assert len(fair_waits) == 15 and max(fair_waits) <= 2, fair_waits
    flood_waits = [w for (stream, _), w in engine.waits.items() if stream[0] == 1]
    assert max(flood_waits) > 2 and flooded > 4  # the flooder did queue far more than a call
    assert engine.most_pending <= 64 and engine.dropped == 0  # backpressure, not drops


def test_a_failing_decision_loop_answers_and_serving_goes_on(caplog):
    caplog.set_level("INFO", logger="restcn_infer")
    clf = CountingClassifier(fail_calls=(1,))
    server = StreamServer(StreamClassifier(clf, hop=2), ServeConfig(port=0))
    frames = body_sequence(6)[0]
    real = server._decide_and_render
    calls = {"n": 0}

    def render_fails_once(ready):  # a failure outside the session call: the tick itself
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("a bug in rendering")
        return real(ready)

    server._decide_and_render = render_fails_once

    async def client(port):
        records = []
        async with connect(f"ws://127.0.0.1:{port}") as ws:
            for pair in (frames[0:2], frames[2:4], frames[4:6]):  # one due window each
                await ws.send("\n".join(frame_text("cam", frame) for frame in pair))
                records.append(json.loads(await ws.recv()))
        return records

    records = asyncio.run(serving(server, client))
    assert records[0]["error"].startswith("internal error while deciding this window "
                                          "(RuntimeError")
    assert records[1] == {"error": "internal error while deciding this window (ValueError: "
                                   "a bug in rendering)", "stream": "cam", "frame": 4}
    assert records[2]["frame"] == 6 and "top" in records[2]  # serving went on
    assert server.tick_failures == 1 and "serving goes on" in caplog.text
    # the server says who came and what each connection cost (its counts, errors included)
    assert "client 1 connected from 127.0.0.1:" in caplog.text
    assert ("client 1 disconnected: frames 6, decisions 1, rejected 0, streams 1, "
            "window_errors 2") in caplog.text


def test_origins_are_checked():
    server = StreamServer(StreamClassifier(FakeClassifier(), hop=2),
                          ServeConfig(port=0, allow_origins=("https://app.example",)))

    async def attempts(port):
        url = f"ws://127.0.0.1:{port}"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin="https://evil.example"):
                pass
        async with connect(url, origin="https://app.example") as ws:  # listed
            await ws.send("")
        async with connect(url) as ws:  # a program: no Origin header
            await ws.send("")
        return refused.value.response.status_code

    assert asyncio.run(serving(server, attempts)) == 403


def test_a_token_is_required_when_set():
    server = StreamServer(StreamClassifier(FakeClassifier(), hop=2),
                          ServeConfig(port=0, token=TOKEN))
    frame = frame_text("cam", body_sequence(1)[0, 0])

    async def attempts(port):
        url = f"ws://127.0.0.1:{port}"
        codes = []
        for headers, query in (({}, ""), ({"Authorization": "Bearer wrong-token-xxxxxx"}, ""),
                               ({}, "?token=nope")):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url + query, additional_headers=headers):
                    pass
            codes.append(refused.value.response.status_code)
        for headers, query in (({"Authorization": f"Bearer {TOKEN}"}, ""),
                               ({}, f"?token={TOKEN}")):
            async with connect(url + query, additional_headers=headers) as ws:
                await ws.send(frame)
                await ws.send(frame)
                assert "top" in json.loads(await ws.recv())
        return codes

    assert asyncio.run(serving(server, attempts)) == [401, 401, 401]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_serves_wss(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = StreamServer(StreamClassifier(FakeClassifier(), hop=1),
                          ServeConfig(port=0, certfile=str(cert), keyfile=str(key)))
    trust = ssl.create_default_context(cafile=str(cert))

    async def client(port):
        async with connect(f"wss://127.0.0.1:{port}", ssl=trust) as ws:
            await ws.send(frame_text("cam", body_sequence(1)[0, 0]))
            return json.loads(await ws.recv())

    assert asyncio.run(serving(server, client))["frame"] == 1


def test_clients_beyond_the_limit_are_closed_with_a_reason():
    server = StreamServer(StreamClassifier(FakeClassifier(), hop=2),
                          ServeConfig(port=0, max_clients=1))

    async def attempts(port):
        url = f"ws://127.0.0.1:{port}"
        async with connect(url) as first:
            await first.send("")
            async with connect(url) as second:
                with pytest.raises(ConnectionClosed) as closed:
                    await second.recv()
        return closed.value.rcvd.code, closed.value.rcvd.reason

    code, reason = asyncio.run(serving(server, attempts))
    assert code == 1013 and "server full" in reason


def test_a_client_that_does_not_read_is_closed_with_a_reason():
    closed = []

    class FakeSocket:
        async def close(self, code, reason):
            closed.append((code, reason))

    async def scenario():
        client = _Client(FakeSocket(), 1, ServeConfig(max_outbox=2))
        for _ in range(3):
            client.send('{"x": 1}')
        await asyncio.sleep(0)
        return client

    client = asyncio.run(scenario())
    assert closed == [(1008, "client too slow to read its records")] and client.closing


@pytest.mark.parametrize("kwargs, match", [
    ({"host": "0.0.0.0"}, "pass --token"),
    ({"host": "example.org"}, "exposes the server"),
    ({"token": "short"}, "at least 16 characters"),
    ({"keyfile": "k.pem"}, "--keyfile needs --certfile"),
    ({"max_clients": 0}, "max_clients must be >= 1"),
])
def test_unsafe_server_settings_are_refused(kwargs, match):
    with pytest.raises(ServeConfigError, match=match):
        ServeConfig(**kwargs)
    assert ServeConfig(host="0.0.0.0", token=TOKEN).token == TOKEN
    assert ServeConfig(host="::1").host == "::1"


def test_unusable_tls_files_are_refused(tmp_path):
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ServeConfigError, match="cannot use the TLS certificate"):
        ServeConfig(certfile=str(bad)).ssl_context()


def test_serve_cli_refuses_an_exposed_bind_without_a_token_before_loading_the_model(monkeypatch):
    monkeypatch.delenv("RESTCN_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--model", "missing.onnx"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "pass --token" in result.stderr and "no such model" not in result.stderr


def test_a_taken_port_is_a_clear_error_naming_the_address():
    import socket

    from restcn_infer.serve_config import ServeBindError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = StreamServer(StreamClassifier(FakeClassifier()), ServeConfig(port=port))
        with pytest.raises(ServeBindError, match=f"cannot listen on 127.0.0.1:{port}"):
            asyncio.run(server.serve(stop=asyncio.Event()))
