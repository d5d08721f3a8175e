"""A headless Chromium driven over the Chrome DevTools Protocol (websockets, no other package):
open a page from disk, collect console errors and exceptions, evaluate JavaScript, take
screenshots. Tests skip cleanly where no Chromium is installed."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,2000", "--remote-debugging-port=0"]


def find_chromium() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class Browser:
    """One Chromium process and one page (``with Browser(path) as page: ...``)."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.executable, self.timeout = executable, timeout
        self.errors: list[str] = []
        self._id = 0

    def __enter__(self) -> Browser:
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="restcn-chromium-")
        self.process = subprocess.Popen(
            [self.executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port = self._port()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as reply:
                    pages = [t for t in json.load(reply) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium opened no page")
            time.sleep(0.1)
        self._connection = contextlib.ExitStack()  # websockets wants its connection in a `with`
        self.socket = self._connection.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=2**28))
        for method in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(method)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._connection.close()
        finally:
            self.process.kill()
            self.process.wait(10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def _port(self) -> int:
        deadline = time.monotonic() + self.timeout
        for line in self.process.stderr:
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if match:
                return int(match.group(1))
            if time.monotonic() > deadline:
                break
        raise TimeoutError("Chromium did not start its DevTools endpoint")

    def call(self, method: str, **params):
        """Send one command and return its result, noting console errors meanwhile."""
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=self.timeout))
            self._note(message)
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def _note(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append(" ".join(str(a.get("value", a.get("description")))
                                        for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"].get("text", "log error"))

    def open(self, path: Path) -> None:
        """Load a file and wait until it has loaded."""
        self.call("Page.navigate", url=path.resolve().as_uri())
        deadline = time.monotonic() + self.timeout
        while self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not finish loading")
            time.sleep(0.05)

    def evaluate(self, expression: str):
        """The value of a JavaScript expression (JSON-serialisable)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(f"{details.get('text')}: "
                               f"{details.get('exception', {}).get('description', '')}")
        return result["result"].get("value")

    def screenshot(self, selector: str) -> bytes:
        """PNG bytes of the element matching ``selector``."""
        find = f"document.querySelector({json.dumps(selector)})"
        box = self.evaluate("(() => { const r = " + find + ".getBoundingClientRect(); "
                            "return [r.x, r.y + window.scrollY, r.width, r.height]; })()")
        clip = {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}
        data = self.call("Page.captureScreenshot", format="png", clip=clip,
                         captureBeyondViewport=True)["data"]
        return base64.b64decode(data)
