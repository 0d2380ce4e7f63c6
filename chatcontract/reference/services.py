"""The server's shared state, built once per app from a ServerConfig."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from chatcontract.reference.config import ServerConfig
from chatcontract.reference.contract import Operation, ReferenceContract, load_contract
from chatcontract.reference.faults import ActiveFaults
from chatcontract.reference.ratelimit import RateLimiter
from chatcontract.reference.runs import RunRegistry
from chatcontract.reference.store import Store
from chatcontract.reference.tokens import Principal, verify_token

__all__ = [
    "FAULTY_LIMIT_OPERATION",
    "Services",
    "WebSocketLimits",
]

# The operation whose limit the `rate-limit-no-retry-after` profile lowers; the
# spec lists 429 for it, so a 429 there is legal and only the header is missing.
FAULTY_LIMIT_OPERATION = "createChatMessage"
_FAULTY_LIMIT_PER_MINUTE = 3


@dataclass(frozen=True, slots=True)
class WebSocketLimits:
    max_message_bytes: int
    connections_per_user: int
    messages_per_minute: int
    heartbeat_seconds: float


@dataclass(eq=False)
class Services:
    config: ServerConfig
    contract: ReferenceContract
    faults: ActiveFaults
    store: Store
    runs: RunRegistry
    ws_limits: WebSocketLimits
    rest_limiter: RateLimiter
    faulty_limiter: RateLimiter
    ws_connections: defaultdict[str, set[object]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def build(cls, config: ServerConfig) -> Services:
        contract = load_contract()
        faults = config.active_faults
        store = Store(config.db)
        ws = contract.websocket
        return cls(
            config=config,
            contract=contract,
            faults=faults,
            store=store,
            runs=RunRegistry(
                store,
                faults,
                seed=config.seed,
                event_delay=config.event_delay_seconds,
                retention=config.run_retention,
            ),
            ws_limits=WebSocketLimits(
                max_message_bytes=config.ws_max_message_bytes or ws.max_message_bytes,
                connections_per_user=config.ws_connections_per_user or ws.connections_per_user,
                messages_per_minute=config.ws_messages_per_minute or ws.messages_per_minute,
                heartbeat_seconds=config.ws_heartbeat_seconds or ws.heartbeat_seconds,
            ),
            rest_limiter=RateLimiter(
                config.rate_limit_per_minute, config.rate_limit_window_seconds
            ),
            faulty_limiter=RateLimiter(_FAULTY_LIMIT_PER_MINUTE, 60),
        )

    def authenticate(self, token: str, *, websocket: bool = False) -> Principal:
        """Verify ``token``; raises TokenError. Fault profiles may loosen the check."""
        return verify_token(
            token,
            self.config,
            allow_alg_none="accepts-alg-none" in self.faults,
            allow_expired=websocket and "ws-accepts-expired" in self.faults,
        )

    def heartbeat_seconds(self, operation: Operation) -> float:
        if self.config.sse_heartbeat_seconds is not None:
            return self.config.sse_heartbeat_seconds
        stream = operation.stream or {}
        return float(stream.get("heartbeat-seconds", 15))

    def limiter_for(self, operation_id: str) -> tuple[RateLimiter, bool]:
        """The limiter for an operation and whether its 429 carries Retry-After."""
        if operation_id == FAULTY_LIMIT_OPERATION and "rate-limit-no-retry-after" in self.faults:
            return self.faulty_limiter, False
        return self.rest_limiter, True

    def close(self) -> None:
        self.store.close()
