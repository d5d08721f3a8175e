"""What ``restcn-infer serve`` is told and refuses before it serves: :class:`ServeConfig`
(address, limits, origins, token, TLS; an exposed bind without a token is refused), the server's
errors, and the optional ``websockets`` import (:func:`require_websockets`).
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from typing import Any

from restcn_infer.errors import MissingDependencyError, RestcnError

#: Hosts that mean "this machine only".
LOOPBACK_NAMES = ("localhost",)


class ServeDependencyError(MissingDependencyError):
    """The optional ``websockets`` package is missing."""


class ServeConfigError(RestcnError, ValueError):
    """Server settings that cannot be used safely (an exposed bind without a token, bad TLS
    files, limits below 1)."""


class ServeBindError(RestcnError, OSError):
    """The server's address cannot be bound (in use, or not an address of this machine)."""


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


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` reaches this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


@dataclass(frozen=True)
class ServeConfig:
    """How :func:`~restcn_infer.stream_server.run_server` serves (the server module's docstring
    says what each field bounds)."""

    host: str = "127.0.0.1"
    port: int = 8765
    max_clients: int = 64
    max_streams_per_client: int = 256
    max_pending_per_client: int = 64
    max_pending: int = 4096
    max_outbox: int = 4096
    send_timeout_s: float = 10.0
    allow_origins: tuple[str, ...] = ()
    token: str | None = None
    certfile: str | None = None
    keyfile: str | None = None

    def __post_init__(self) -> None:
        for name in ("max_clients", "max_streams_per_client", "max_pending_per_client",
                     "max_pending", "max_outbox"):
            if getattr(self, name) < 1:
                raise ServeConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.send_timeout_s > 0:
            raise ServeConfigError(f"send_timeout_s must be > 0, got {self.send_timeout_s}")
        if self.token is not None and len(self.token) < 16:
            raise ServeConfigError("a token must be at least 16 characters (e.g. "
                                   "python -c 'import secrets; print(secrets.token_urlsafe())')")
        if self.token is None and not is_loopback(self.host):
            raise ServeConfigError(
                f"binding {self.host!r} exposes the server beyond this machine: pass --token "
                "SECRET (clients then send 'Authorization: Bearer SECRET' or '?token=SECRET'), "
                "and --certfile/--keyfile so it is not sent in the clear")
        if self.keyfile is not None and self.certfile is None:
            raise ServeConfigError("--keyfile needs --certfile")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of ``certfile``/``keyfile``, or None (plain ``ws://``)."""
        if self.certfile is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ServeConfigError(f"cannot use the TLS certificate {self.certfile}"
                                   f"{' / ' + self.keyfile if self.keyfile else ''}: {exc}"
                                   ) from None
        return context

    @property
    def origins(self) -> list[str | None] | None:
        """``websockets``' ``origins``: no Origin header (a program) or a listed one."""
        if "*" in self.allow_origins:
            return None
        return [None, *self.allow_origins]
