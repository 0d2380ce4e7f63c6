"""The reference server's configuration: one frozen value, validated on creation."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chatcontract.errors import ConfigError
from chatcontract.reference.faults import ActiveFaults, validate_faults

__all__ = [
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_PORT",
    "DEFAULT_SIGNING_KEY",
    "ServerConfig",
]

DEFAULT_PORT = 8000
DEFAULT_CLIENT_SECRET = "reference-secret"
# Deliberately public: the reference server is a local test double, and a fixed
# key lets separate processes (CLI server, contract suite) agree on tokens.
DEFAULT_SIGNING_KEY = "chatcontract-reference-signing-key-not-a-secret"
_MIN_KEY_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least 256 bits


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the reference server can be told.

    Limits left as ``None`` are read from the spec (``x-stream`` and
    ``x-websocket``), so the server follows the contract unless a test says
    otherwise.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db: str = ":memory:"
    client_secret: str = DEFAULT_CLIENT_SECRET
    signing_key: str = DEFAULT_SIGNING_KEY
    issuer: str = "chat-reference"
    audience: str = "chat-api"
    token_ttl_seconds: int = 3600
    event_delay_seconds: float = 0.005
    sse_heartbeat_seconds: float | None = None
    ws_heartbeat_seconds: float | None = None
    ws_max_message_bytes: int | None = None
    ws_connections_per_user: int | None = None
    ws_messages_per_minute: int | None = None
    rate_limit_per_minute: int = 100_000
    rate_limit_window_seconds: int = 60
    run_retention: int = 512
    seed: int = 0
    faults: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        # Accept any iterable of names but store a frozenset, so configs hash and compare.
        object.__setattr__(self, "faults", validate_faults(self.faults))
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        if len(self.signing_key.encode()) < _MIN_KEY_BYTES:
            raise ConfigError(f"signing_key must be at least {_MIN_KEY_BYTES} bytes for HS256")
        if not self.client_secret:
            raise ConfigError("client_secret must not be empty")
        if self.token_ttl_seconds < 1:
            raise ConfigError("token_ttl_seconds must be at least 1")
        if self.event_delay_seconds < 0:
            raise ConfigError("event_delay_seconds must not be negative")
        if self.rate_limit_per_minute < 1 or self.rate_limit_window_seconds < 1:
            raise ConfigError("rate limits must be at least 1")
        if self.run_retention < 1:
            raise ConfigError("run_retention must be at least 1")
        for name in (
            "sse_heartbeat_seconds",
            "ws_heartbeat_seconds",
            "ws_max_message_bytes",
            "ws_connections_per_user",
            "ws_messages_per_minute",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")

    @property
    def active_faults(self) -> ActiveFaults:
        return ActiveFaults.of(self.faults)

    def replace(self, **overrides: Any) -> ServerConfig:
        """A copy with ``overrides`` applied; unknown names raise ConfigError."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown ServerConfig field(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides)

    def with_faults(self, faults: Iterable[str]) -> ServerConfig:
        return self.replace(faults=frozenset(faults))
