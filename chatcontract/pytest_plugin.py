"""pytest plugin: chatcontract's contracts inside a team's own test suite.

Options (all optional)::

    --chatcontract-base-url URL   the API under test (default: start the reference server)
    --chatcontract-spec PATH      the spec (default: ./openapi.yaml, else the bundled one)
    --chatcontract-faults NAMES   fault profiles for the started reference server
    --chatcontract-seed N         seed for generated inputs
    --chatcontract-max-examples N examples per operation for REST and frame fuzzing (25)
    --chatcontract-time-budget S  a wall for the whole contract run

**One item per contract.** A test that takes the ``chatcontract_result``
fixture is parametrized over the spec's plan: one pytest item per contract,
its id the contract id, marked with its tier (``p1``/``p2``) and category
(``inventory``, ``rest``, ``sse``, ``websocket``), so ``pytest -m p1``,
``-k stream``, ``-x``, xdist and JUnit work at contract granularity::

    from chatcontract.pytest_plugin import assert_contract_holds

    def test_contract(chatcontract_result):
        assert_contract_holds(chatcontract_result)

The contracts that remain after pytest's own selection (``-m``, ``-k``) are
run once, together, on first use (each xdist worker runs its own share).
Skipped contracts are pytest skips with their reason; a failed one is a
:class:`ContractViolation` (an ``AssertionError``); an inconclusive one fails
unless ``allow_inconclusive``.

Other fixtures: ``reference_server`` and ``reference_factory`` (the reference
server, clean or with fault profiles), ``chatcontract_spec``,
``chatcontract_target`` (base URL), ``chatcontract_context`` (a
:class:`RunContext`) and ``chatcontract_results`` (whole categories, memoised).
Runs are built exactly as ``chatcontract run`` builds them
(:mod:`chatcontract.launch`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chatcontract.context import RunContext
from chatcontract.errors import ChatContractError, ContractViolation
from chatcontract.plan import Plan, PlannedContract, Selection
from chatcontract.report.model import ContractResult, Outcome
from chatcontract.spec import Spec

__all__ = ["ContractRun", "assert_contract_holds", "assert_contracts_hold"]

_RESULT_FIXTURE = "chatcontract_result"
_CATEGORY_MARKERS = ("inventory", "rest", "sse", "websocket")
_WANTED = pytest.StashKey[set[str]]()
_PLAN = pytest.StashKey[Plan]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chatcontract", "chat API contracts")
    group.addoption("--chatcontract-base-url", default=None, help="API under test")
    group.addoption("--chatcontract-spec", default=None, help="OpenAPI spec")
    group.addoption("--chatcontract-faults", default="", help="reference server fault profiles")
    group.addoption("--chatcontract-seed", type=int, default=0, help="seed for generated inputs")
    group.addoption(
        "--chatcontract-max-examples", type=int, default=25, help="examples per operation"
    )
    group.addoption(
        "--chatcontract-time-budget", type=float, default=None, help="seconds for the whole run"
    )


def pytest_configure(config: pytest.Config) -> None:
    # The reference server's fixtures (reference_server, reference_factory) are
    # product too: a team can start a faulty server in its own tests.
    from chatcontract.reference import testing

    if not config.pluginmanager.is_registered(testing):
        config.pluginmanager.register(testing, "chatcontract-reference")
    config.addinivalue_line("markers", "p1: a P1 contract (must hold for a release)")
    config.addinivalue_line("markers", "p2: a P2 contract")
    for name in _CATEGORY_MARKERS:
        config.addinivalue_line("markers", f"{name}: a chatcontract {name} contract")


def _options(config: pytest.Config, selection: Selection | None = None) -> Any:
    from chatcontract.launch import RunOptions

    return RunOptions(
        spec=_spec_path(config),
        base_url=config.getoption("--chatcontract-base-url"),
        faults=config.getoption("--chatcontract-faults"),
        seed=config.getoption("--chatcontract-seed"),
        max_examples=config.getoption("--chatcontract-max-examples"),
        time_budget=config.getoption("--chatcontract-time-budget"),
        selection=selection or Selection(),
    )


def _one_line(exc: ChatContractError) -> str:
    lines = exc.lines() if hasattr(exc, "lines") else [str(exc)]
    return "chatcontract: " + "; ".join(lines)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One parameter per planned contract for tests that take ``chatcontract_result``."""
    if _RESULT_FIXTURE not in metafunc.fixturenames:
        return
    config = metafunc.config
    if _PLAN not in config.stash:
        from chatcontract.launch import load_run_spec, plan_for

        options = _options(config)
        try:
            config.stash[_PLAN] = plan_for(load_run_spec(options.spec), options)
        except ChatContractError as exc:
            # One item that fails with one line: no traceback, no dump of the environment.
            problem = _ConfigurationProblem(_one_line(exc))
            param = pytest.param(problem, id="chatcontract-configuration")
            metafunc.parametrize(_RESULT_FIXTURE, [param], indirect=True)
            return
    plan = config.stash[_PLAN]
    params = [
        pytest.param(
            contract,
            id=contract.id,
            marks=[
                getattr(pytest.mark, contract.tier.lower()),
                getattr(pytest.mark, contract.category),
            ],
        )
        for contract in plan.contracts
    ]
    metafunc.parametrize(_RESULT_FIXTURE, params, indirect=True)


class _ConfigurationProblem(str):
    """Stands in for the plan when the options or the spec are wrong."""


def _marks(contract: PlannedContract) -> list[pytest.MarkDecorator]:
    return [getattr(pytest.mark, contract.tier.lower()), getattr(pytest.mark, contract.category)]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember which contracts survived ``-m`` / ``-k``: only those (and prerequisites) run."""
    wanted: set[str] = set()
    for item in items:
        spec = getattr(item, "callspec", None)
        contract = spec.params.get(_RESULT_FIXTURE) if spec is not None else None
        if isinstance(contract, PlannedContract):
            wanted.add(contract.id)
    config.stash[_WANTED] = wanted


def assert_contract_holds(result: ContractResult, *, allow_inconclusive: bool = False) -> None:
    """Skip a skipped contract, raise :class:`ContractViolation` for one that does not hold."""
    if result.outcome is Outcome.SKIPPED:
        pytest.skip(f"{result.id}: {result.reason}")
    assert_contracts_hold([result], allow_inconclusive=allow_inconclusive)


def assert_contracts_hold(
    results: Iterable[ContractResult], *, allow_inconclusive: bool = False
) -> None:
    """Raise :class:`ContractViolation` listing every contract that does not hold."""
    bad: list[str] = []
    for result in results:
        if result.outcome is Outcome.FAILED:
            first = "; ".join(f.line() for f in result.failures[:3])
            bad.append(f"FAILED {result.name} [{result.id}]: {first}")
            for finding in result.failures[:3]:
                if finding.repro:
                    bad.append(f"  reproduce: {finding.repro}")
        elif result.outcome is Outcome.INCONCLUSIVE and not allow_inconclusive:
            bad.append(f"INCONCLUSIVE {result.name} [{result.id}]: {result.reason}")
    if bad:
        raise ContractViolation("\n".join(bad))


class ContractRun:
    """Runs categories (or the collected contracts) against one context, once per session."""

    def __init__(self, ctx: RunContext, plan: Plan | None = None) -> None:
        self.ctx = ctx
        self.plan = plan
        self._done: dict[str, list[ContractResult]] = {}
        self._contracts: dict[str, ContractResult] | None = None

    def category(self, name: str) -> list[ContractResult]:
        from chatcontract.runner import run_contracts

        if name not in self._done:
            self._done[name] = asyncio.run(run_contracts(self.ctx, [name]))
        return self._done[name]

    def contract(self, contract_id: str, wanted: Iterable[str]) -> ContractResult:
        """The result of ``contract_id``; the first call runs every ``wanted`` contract."""
        if self._contracts is None:
            self._contracts = self._run(set(wanted) | {contract_id})
        found = self._contracts.get(contract_id)
        if found is None:
            raise ContractViolation(f"{contract_id}: no result (not planned for this spec)")
        return found

    def _run(self, wanted: set[str]) -> dict[str, ContractResult]:
        from chatcontract.launch import spec_digest
        from chatcontract.report.model import RunMeta
        from chatcontract.runner import build_plan, execute

        plan = (self.plan or build_plan(self.ctx.spec, self.ctx.settings)).select(
            Selection(only=tuple(sorted(wanted)))
        )
        meta = RunMeta(
            tool_version="pytest",
            spec_source=self.ctx.spec.source,
            spec_sha256=spec_digest(self.ctx.spec),
            target=self.ctx.redactor(self.ctx.base_url),
        )

        async def main() -> dict[str, ContractResult]:
            self.ctx.services.start(self.ctx.settings)
            report = await execute(self.ctx, plan, meta)
            return {r.id: r for r in report.results}

        return asyncio.run(main())


def _spec_path(config: pytest.Config) -> str | None:
    chosen = config.getoption("--chatcontract-spec")
    if chosen:
        return str(chosen)
    local = Path(config.rootpath) / "openapi.yaml"
    return str(local) if local.exists() else None


@pytest.fixture(scope="session")
def _chatcontract_prepared(pytestconfig: pytest.Config) -> Iterator[Any]:
    from chatcontract import __version__
    from chatcontract.launch import prepare_run

    with contextlib.ExitStack() as stack:
        problem = None
        try:
            prepared = stack.enter_context(
                prepare_run(_options(pytestconfig), tool_version=__version__)
            )
        except ChatContractError as exc:
            problem = _one_line(exc)
        if problem is not None:  # outside the handler: one line, no chained traceback
            pytest.fail(problem, pytrace=False)
        yield prepared


@pytest.fixture(scope="session")
def chatcontract_spec(_chatcontract_prepared: Any) -> Spec:
    """The spec under test, loaded and validated once."""
    spec: Spec = _chatcontract_prepared.ctx.spec
    return spec


@pytest.fixture(scope="session")
def chatcontract_target(_chatcontract_prepared: Any) -> str:
    """The base URL under test; the reference server is started when none is given."""
    url: str = _chatcontract_prepared.ctx.base_url
    return url


@pytest.fixture(scope="session")
def chatcontract_context(_chatcontract_prepared: Any) -> RunContext:
    """Everything a checker needs, built exactly as ``chatcontract run`` builds it."""
    ctx: RunContext = _chatcontract_prepared.ctx
    return ctx


@pytest.fixture(scope="session")
def chatcontract_results(_chatcontract_prepared: Any) -> ContractRun:
    """``chatcontract_results.category("sse")`` runs that category once and memoises it."""
    return ContractRun(_chatcontract_prepared.ctx)


@pytest.fixture
def chatcontract_result(request: pytest.FixtureRequest) -> ContractResult:
    """The verdict on this item's contract (the first item runs every collected contract)."""
    if isinstance(request.param, _ConfigurationProblem):
        pytest.fail(str(request.param), pytrace=False)
    contract: PlannedContract = request.param
    wanted = request.config.stash.get(_WANTED, set())
    results: ContractRun = request.getfixturevalue("chatcontract_results")
    return results.contract(contract.id, wanted)
