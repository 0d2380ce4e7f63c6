"""pytest plugin: chatcontract's contracts inside a team's own test suite.

Options (all optional)::

    --chatcontract-base-url URL   the API under test (default: start the reference server)
    --chatcontract-spec PATH      the spec (default: ./openapi.yaml, else the bundled one)
    --chatcontract-faults NAMES   fault profiles for the started reference server
    --chatcontract-seed N         seed for generated inputs
    --chatcontract-max-examples N examples per operation for REST and frame fuzzing

Fixtures: ``reference_server`` and ``reference_factory`` (the reference
server, clean or with fault profiles), ``chatcontract_spec``, ``chatcontract_target`` (base URL),
``chatcontract_context`` (a :class:`RunContext`) and ``chatcontract_results``
(runs a category once per session and memoises it). ``assert_contracts_hold``
turns failed or inconclusive results into a :class:`ContractViolation`, which
pytest reports as a test failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from chatcontract.context import RunContext, RunSettings
from chatcontract.errors import ContractViolation
from chatcontract.redact import Redactor
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.spec import Spec, bundled_spec_path, load_spec

__all__ = ["ContractRun", "assert_contracts_hold"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatcontract", "chat API contracts")
    group.addoption("--chatcontract-base-url", default=None, help="API under test")
    group.addoption("--chatcontract-spec", default=None, help="OpenAPI 3.2 spec")
    group.addoption("--chatcontract-faults", default="", help="reference server fault profiles")
    group.addoption("--chatcontract-seed", type=int, default=0, help="seed for generated inputs")
    group.addoption(
        "--chatcontract-max-examples", type=int, default=10, help="examples per operation"
    )


def pytest_configure(config: pytest.Config) -> None:
    # The reference server's fixtures (reference_server, reference_factory) are
    # product too: a team can start a faulty server in its own tests.
    from chatcontract.reference import testing

    if not config.pluginmanager.is_registered(testing):
        config.pluginmanager.register(testing, "chatcontract-reference")


def assert_contracts_hold(
    results: Iterable[ContractResult], *, allow_inconclusive: bool = False
) -> None:
    """Raise :class:`ContractViolation` listing every contract that does not hold."""
    bad: list[str] = []
    for result in results:
        if result.outcome is Outcome.FAILED:
            first = "; ".join(f.line() for f in result.failures[:3])
            bad.append(f"FAILED {result.name} [{result.id}]: {first}")
        elif result.outcome is Outcome.INCONCLUSIVE and not allow_inconclusive:
            bad.append(f"INCONCLUSIVE {result.name} [{result.id}]: {result.reason}")
    if bad:
        raise ContractViolation("\n".join(bad))


class ContractRun:
    """Runs categories against one context, each at most once per session."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._done: dict[str, list[ContractResult]] = {}

    def category(self, name: str) -> list[ContractResult]:
        from chatcontract.runner import run_contracts

        if name not in self._done:
            self._done[name] = asyncio.run(run_contracts(self.ctx, [name]))
        return self._done[name]


def _spec_path(config: pytest.Config) -> Path:
    chosen = config.getoption("--chatcontract-spec")
    if chosen:
        return Path(chosen)
    local = Path(config.rootpath) / "openapi.yaml"
    return local if local.exists() else bundled_spec_path()


@pytest.fixture(scope="session")
def chatcontract_spec(pytestconfig: pytest.Config) -> Spec:
    """The spec under test, loaded and validated once."""
    return load_spec(_spec_path(pytestconfig))


@pytest.fixture(scope="session")
def chatcontract_target(pytestconfig: pytest.Config) -> Iterator[str]:
    """The base URL under test; starts the reference server when none is given."""
    given = pytestconfig.getoption("--chatcontract-base-url")
    if given:
        yield str(given).rstrip("/")
        return
    from chatcontract.reference.faults import parse_faults
    from chatcontract.reference.server import running_reference

    faults = parse_faults(pytestconfig.getoption("--chatcontract-faults"))
    with running_reference(faults=faults) as server:
        yield server.url


@pytest.fixture(scope="session")
def chatcontract_context(
    pytestconfig: pytest.Config, chatcontract_spec: Spec, chatcontract_target: str
) -> RunContext:
    """Everything a checker needs, with credentials from the environment (or the
    reference server's defaults)."""
    from chatcontract.auth import credentials_from_env

    is_reference = not pytestconfig.getoption("--chatcontract-base-url")
    settings = RunSettings(
        seed=pytestconfig.getoption("--chatcontract-seed"),
        max_examples=pytestconfig.getoption("--chatcontract-max-examples"),
        target_is_reference=is_reference,
        check_limits=is_reference,
    )
    if is_reference:
        from chatcontract.reference.config import ServerConfig

        settings = _with_signing_key(settings, ServerConfig().signing_key)
    redactor = Redactor()
    credentials = credentials_from_env(
        chatcontract_spec, chatcontract_target, on_secret=redactor.add
    )
    return RunContext(chatcontract_spec, chatcontract_target, credentials, settings, redactor)


def _with_signing_key(settings: RunSettings, key: str) -> RunSettings:
    from dataclasses import replace

    return replace(settings, signing_key=key)


@pytest.fixture(scope="session")
def chatcontract_results(chatcontract_context: RunContext) -> ContractRun:
    """``chatcontract_results.category("sse")`` runs that category once and memoises it."""
    return ContractRun(chatcontract_context)
