"""What every checker receives: the spec, the target, credentials, settings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from chatcontract.budget import Pacer, RunBudget
from chatcontract.redact import Redactor
from chatcontract.spec import Spec

__all__ = [
    "CredentialVerdict",
    "Credentials",
    "Progress",
    "RunContext",
    "RunServices",
    "RunSettings",
    "shared_positive_control",
]


@runtime_checkable
class Credentials(Protocol):
    """Tokens for named users; implementations live in :mod:`chatcontract.auth`."""

    @property
    def users(self) -> tuple[str, ...]:
        """At least one user; isolation checks need two."""
        ...

    async def token(self, user: str | None = None) -> str:
        """A currently valid bearer token for ``user`` (default: the first user)."""
        ...

    def secrets(self) -> Iterable[str]:
        """Every secret this provider holds or has handed out, for redaction."""
        ...


@runtime_checkable
class CredentialVerdict(Protocol):
    """Whether the run's credentials work: the positive control every auth check needs.

    ``accepted`` is True (every user's token got a 2xx from a protected
    operation), False (refused; ``reason`` starts with ``credentials rejected:``)
    or None (nothing could decide).
    """

    @property
    def accepted(self) -> bool | None: ...

    @property
    def reason(self) -> str: ...

    def accepts(self, user: str) -> bool | None:
        """Whether ``user``'s token was accepted (None: not decided)."""
        ...


@dataclass(frozen=True, slots=True)
class RunSettings:
    seed: int = 0
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    max_examples: int = 25
    """Per operation, for schemathesis and WebSocket frame fuzzing."""
    request_budget: int = 5_000
    """Upper bound on HTTP requests a run may send (REST phases included)."""
    rate_limit: str | None = None
    """schemathesis-style ``N/s`` or ``N/m`` pacing for gentle staging runs."""
    time_budget: float | None = None
    """Seconds for the whole run; checkers stop starting new work past it."""
    check_limits: bool = False
    """Opt-in: exercise connection and rate limits (always on for the reference)."""
    signing_key: str | None = None
    """Optional HS256 key, to forge expired/nbf/iss/aud tokens for the auth matrix."""
    target_is_reference: bool = False
    tiers: frozenset[str] = frozenset({"P1", "P2"})
    """Kept for scripts; the CLI and the plugin select tiers on the plan instead."""
    cache_dir: Path | None = None
    """The one folder a run may keep state in (hypothesis' files); None:
    ``$XDG_CACHE_HOME/chatcontract``, else ``~/.cache/chatcontract``. Never the working
    directory unless given."""
    path_parameters: Mapping[str, str] = field(default_factory=dict)
    """Values for the parameters of a WebSocket URL (``kernel_id`` in
    ``/api/kernels/{kernel_id}/channels``, and its required query parameters), by name:
    they win over objects created through the spec's links and over examples."""


class Progress(Protocol):
    """What a category may ask the runner while it works (see :mod:`chatcontract.runner`)."""

    def wants(self, contract_id: str) -> bool:
        """Whether the run needs ``contract_id`` (selected, or a prerequisite of one)."""
        ...

    def blocked(self, contract_id: str) -> str | None:
        """``"blocked by <id>: ..."`` when a prerequisite of ``contract_id`` failed."""
        ...

    def starting(self, contract_id: str) -> None:
        """Tell the reporters that work on ``contract_id`` begins now."""
        ...


class _Unplanned:
    """Progress for a category run on its own (tests, scripts): everything is wanted."""

    def wants(self, contract_id: str) -> bool:
        return True

    def blocked(self, contract_id: str) -> str | None:
        return None

    def starting(self, contract_id: str) -> None:
        return None


class RunServices:
    """What every category of one run shares, typed: one budget, one pace, one positive control.

    Created with the context; the time budget starts when the run starts
    (:meth:`start`), so spec loading and server start-up are not charged to it.
    """

    def __init__(self, settings: RunSettings) -> None:
        self.budget = RunBudget(settings.request_budget, settings.time_budget)
        self.pacer = Pacer(settings.rate_limit)
        self._control: CredentialVerdict | None = None
        self._control_lock: asyncio.Lock | None = None

    def start(self, settings: RunSettings) -> None:
        """Restart the clock of the time budget: the run begins now."""
        self.budget = RunBudget(settings.request_budget, settings.time_budget)

    @property
    def control(self) -> CredentialVerdict | None:
        """The positive control, once someone has run it."""
        return self._control

    @control.setter
    def control(self, verdict: CredentialVerdict) -> None:
        """A control decided elsewhere (another process, a test): nobody runs it again."""
        self._control = verdict

    async def positive_control(
        self, compute: Callable[[], Awaitable[CredentialVerdict]]
    ) -> CredentialVerdict:
        """The run's one positive control: ``compute`` runs at most once per run."""
        if self._control is None:
            if self._control_lock is None:
                self._control_lock = asyncio.Lock()
            async with self._control_lock:
                if self._control is None:
                    self._control = await compute()
        return self._control


@dataclass(slots=True)
class RunContext:
    """Shared by every category of one run."""

    spec: Spec
    base_url: str
    credentials: Credentials
    settings: RunSettings = field(default_factory=RunSettings)
    redactor: Redactor = field(default_factory=Redactor)
    services: RunServices = field(init=False)
    """Budget, pacing and the positive control, shared by every category (typed)."""
    progress: Progress = field(default_factory=_Unplanned)
    """The runner's answers while a plan executes: wanted, blocked, starting."""
    cache: dict[str, Any] = field(default_factory=dict)
    """A category's own per-run memo; nothing crosses categories through it."""

    def __post_init__(self) -> None:
        self.services = RunServices(self.settings)

    @property
    def ws_base_url(self) -> str:
        if self.base_url.startswith("https://"):
            return "wss://" + self.base_url.removeprefix("https://")
        return "ws://" + self.base_url.removeprefix("http://")

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def shared_positive_control(ctx: RunContext) -> CredentialVerdict | None:
    """The positive control another category already ran, if any."""
    return ctx.services.control
