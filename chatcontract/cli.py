"""The ``chatcontract`` command line.

Exit codes: 0 every contract holds; 1 a contract was violated; 2 bad usage or
a bad spec; 3 the target cannot be reached; 4 no violation, but a P1 contract
could not be judged (inconclusive, e.g. credentials rejected).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
from rich.console import Console
from rich.text import Text

from chatcontract import __version__
from chatcontract.errors import ChatContractError, ConfigError, SpecError, TargetUnreachable
from chatcontract.events import RunFinished
from chatcontract.plan import Plan, Selection, parse_shard
from chatcontract.redact import Redactor
from chatcontract.report.console import ConsoleReporter, console_mode
from chatcontract.report.model import ContractResult, Outcome, RunReport, RunStatus

if TYPE_CHECKING:
    from chatcontract.launch import PreparedRun
    from chatcontract.report.diff import RunDiff

__all__ = ["EXIT_INCONCLUSIVE", "exit_code", "main"]

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERNAL = 70  # EX_SOFTWARE: chatcontract itself failed
EXIT_INCONCLUSIVE = 4


_SHAPES = Redactor()
"""Errors raised before a run's own redactor exists still lose credential-shaped text."""


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"chatcontract: {_SHAPES(message)}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatcontract")
def cli() -> None:
    """Check, from one OpenAPI 3.2 spec, that a chat API keeps its contract."""


@cli.command()
@click.argument("spec", required=False, default="openapi.yaml", metavar="[SPEC]")
def lint(spec: str) -> None:
    """Validate SPEC (default: openapi.yaml) and the quality of its contracts.

    Prints one line per problem, FILE: /json/pointer: what is wrong, and exits 2;
    exits 0 when the spec is valid.
    """
    from chatcontract.spec import diagnose

    where, found = diagnose(Path(spec) if not spec.startswith("http") else spec)
    for diagnostic in found:
        click.echo(diagnostic.line(where))
    if any(d.severity == "error" for d in found):
        sys.exit(EXIT_USAGE)
    warned = sum(1 for d in found if d.severity == "warning")
    click.echo(f"{where}: ok" + (f" ({warned} warning(s))" if warned else ""))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--db", default=None, help="SQLite file (default: in memory).")
@click.option("--faults", default="", help="Comma-separated fault profiles to switch on.")
@click.option("--list-faults", is_flag=True, help="List the fault profiles and exit.")
def serve(host: str, port: int, db: str | None, faults: str, list_faults: bool) -> None:
    """Run the reference chat server (the spec, implemented)."""
    from chatcontract.reference.server import serve_main

    sys.exit(serve_main(host=host, port=port, db=db, faults=faults, list_faults=list_faults))


_RUN_HELP = """Check a chat API against the spec: inventory, REST, streams, WebSocket.

Without --base-url the embedded reference server is started (with the
--faults profiles switched on) and checked with its own default credentials.

\b
Credentials come from the environment, never from flags:
  CHATCONTRACT_TOKEN, CHATCONTRACT_TOKEN_<USER>   fixed bearer tokens, or
  OAuth2 client credentials against the spec's tokenUrl for the users in
  CHATCONTRACT_USERS (default alice,bob), secret CHATCONTRACT_CLIENT_SECRET
  (or CHATCONTRACT_CLIENT_SECRET_<USER>); CHATCONTRACT_CONFIG names a TOML
  file with an [auth] table instead.

\b
Exit codes:
  0  every contract judged holds
  1  a contract was violated (failures win over everything below)
  2  bad usage or an invalid spec
  3  the target cannot be reached (nothing is reported)
  4  nothing was violated, but a P1 contract is INCONCLUSIVE: it could not
     be judged (e.g. credentials rejected), so the run proves nothing about
     it. --allow-inconclusive turns 4 into 0; the summary still says so.
     Inconclusive P2 contracts are reported but never change the exit code.

\b
Forged-token rows of the WebSocket auth matrix (expired, nbf, iss, aud) need
the HS256 signing key in CHATCONTRACT_SIGNING_KEY; without it they are skipped.
"""


def exit_code(results: Sequence[ContractResult], *, allow_inconclusive: bool = False) -> int:
    """The run's exit code from its results (see ``chatcontract run --help``)."""
    if any(r.outcome is Outcome.FAILED for r in results):
        return EXIT_VIOLATION
    if not results and not allow_inconclusive:
        return EXIT_INCONCLUSIVE
    unjudged = any(r.outcome is Outcome.INCONCLUSIVE and r.tier == "P1" for r in results)
    if unjudged and not allow_inconclusive:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def _selection(
    tier: str, only: tuple[str, ...], selected: tuple[str, ...], shard: str | None
) -> Selection:
    known = _category_names()
    unknown = [name for name in selected if name not in known]
    if unknown:
        raise ConfigError(f"unknown category {unknown[0]!r}; known: {', '.join(known)}")
    return Selection(
        tiers=frozenset() if tier == "all" else frozenset({tier.upper()}),
        only=only,
        categories=frozenset(selected),
        shard=parse_shard(shard) if shard else None,
    )


def _category_names() -> list[str]:
    from chatcontract.runner import categories

    return [c.name for c in categories()]


_SELECTION_OPTIONS = [
    click.option(
        "--tier",
        type=click.Choice(["p1", "p2", "all"], case_sensitive=False),
        default="all",
        show_default=True,
        help="Only contracts of this tier (selected before any request).",
    ),
    click.option(
        "--only",
        multiple=True,
        metavar="ID-OR-GLOB",
        help="Only these contracts, e.g. 'sse/*' or 'inventory/GET /health' (repeatable).",
    ),
    click.option(
        "--category",
        "selected",
        multiple=True,
        metavar="NAME",
        help="Only this category (repeatable): inventory, rest, sse, websocket.",
    ),
    click.option(
        "--shard",
        default=None,
        metavar="K/N",
        help="Only shard K of N (split by id hash; prerequisites run where needed).",
    ),
]


def _with_selection(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(_SELECTION_OPTIONS):
        fn = option(fn)
    return fn


@cli.command("plan")
@click.option("--spec", "spec_path", default=None, metavar="PATH", help="The spec.")
@_with_selection
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON lines.")
def plan_command(
    spec_path: str | None,
    tier: str,
    only: tuple[str, ...],
    selected: tuple[str, ...],
    shard: str | None,
    as_json: bool,
) -> None:
    """List every contract the spec implies, without sending anything.

    One line per contract: id, tier, category, and what it needs first.
    """
    from chatcontract.launch import RunOptions, load_run_spec, plan_for

    options = RunOptions(spec=spec_path, selection=_selection(tier, only, selected, shard))
    spec = load_run_spec(spec_path)
    for pointer, message in spec.warnings:
        click.echo(f"{spec.source}: {pointer}: warning: {message}", err=True)
    _print_plan(plan_for(spec, options), as_json=as_json)


def _print_plan(plan: Plan, *, as_json: bool = False) -> None:
    import orjson

    for contract in plan.runnable:
        role = "selected" if contract.id in plan.selected else "prerequisite"
        if as_json:
            row = {
                "id": contract.id,
                "name": contract.name,
                "tier": contract.tier,
                "category": contract.category,
                "target": contract.target,
                "requires": list(contract.requires + contract.requires_any),
                "cost": contract.cost,
                "role": role,
            }
            click.echo(orjson.dumps(row).decode())
            continue
        needs = ", ".join(contract.requires + contract.requires_any)
        suffix = f"   (needs {needs})" if needs else ""
        marker = "" if role == "selected" else "   [prerequisite]"
        click.echo(f"{contract.tier}  {contract.id}{suffix}{marker}")
    click.echo(f"{len(plan.selected)} contracts selected, {len(plan.runnable)} to run")


@cli.command(help=_RUN_HELP)
@click.option(
    "--spec",
    "spec_path",
    default=None,
    metavar="PATH",
    help="The OpenAPI spec (default: ./openapi.yaml, else the bundled one).",
)
@click.option(
    "--base-url",
    default=None,
    metavar="URL",
    help="The API under test (default: start the embedded reference server).",
)
@click.option(
    "--faults",
    default="",
    metavar="NAMES",
    help="Comma-separated fault profiles for the embedded reference server.",
)
@_with_selection
@click.option("--list", "list_only", is_flag=True, help="Print the plan and exit.")
@click.option("--junit-xml", "junit_path", default=None, metavar="PATH", help="JUnit XML report.")
@click.option("--json", "json_path", default=None, metavar="PATH", help="JSON report.")
@click.option(
    "--markdown",
    "markdown_path",
    default=None,
    metavar="PATH",
    help='Markdown status report (e.g. "$GITHUB_STEP_SUMMARY").',
)
@click.option(
    "--baseline",
    default=None,
    metavar="PATH",
    help="A previous run's JSON report: every report says what was fixed and what is new.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["any", "new"]),
    default="any",
    show_default=True,
    help="Exit 1 on any failure, or (with --baseline) only on new failures.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs.")
@click.option(
    "--max-examples",
    type=click.IntRange(1),
    default=25,
    show_default=True,
    help="Generated examples per operation.",
)
@click.option(
    "--time-budget",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="A wall: at the budget everything in flight is cancelled and reported.",
)
@click.option(
    "--rate-limit",
    default=None,
    metavar="N/s",
    help="Pace every request, stream and handshake, e.g. 10/s or 300/m.",
)
@click.option(
    "--request-budget",
    type=click.IntRange(1),
    default=5000,
    show_default=True,
    help="Upper bound on HTTP requests for the whole run.",
)
@click.option(
    "--allow-inconclusive",
    is_flag=True,
    help="Exit 0 instead of 4 when nothing failed but P1 contracts are inconclusive.",
)
@click.option(
    "--check-limits",
    is_flag=True,
    help="Also exercise declared connection and rate limits (always on for the reference).",
)
@click.option(
    "--cache-dir",
    default=None,
    metavar="PATH",
    help="Where run state lives (default: $XDG_CACHE_HOME/chatcontract); never the cwd.",
)
@click.option(
    "--path-param",
    "path_params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value for {NAME} in a WebSocket URL the spec's links cannot fill (repeatable).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and the summary.")
def run(
    spec_path: str | None,
    base_url: str | None,
    faults: str,
    tier: str,
    only: tuple[str, ...],
    selected: tuple[str, ...],
    shard: str | None,
    list_only: bool,
    junit_path: str | None,
    json_path: str | None,
    markdown_path: str | None,
    baseline: str | None,
    fail_on: str,
    seed: int,
    max_examples: int,
    time_budget: float | None,
    rate_limit: str | None,
    request_budget: int,
    allow_inconclusive: bool,
    check_limits: bool,
    cache_dir: str | None,
    path_params: tuple[str, ...],
    quiet: bool,
) -> None:
    from chatcontract.launch import RunOptions, check_output_path, prepare_run, validate
    from chatcontract.redact import Redactor

    options = RunOptions(
        spec=spec_path,
        base_url=base_url,
        faults=faults,
        seed=seed,
        max_examples=max_examples,
        time_budget=time_budget,
        rate_limit=rate_limit,
        request_budget=request_budget,
        check_limits=check_limits,
        cache_dir=cache_dir,
        path_parameters=_path_parameters(path_params),
        selection=_selection(tier, only, selected, shard),
    )
    validate(options)
    outputs = {"--junit-xml": junit_path, "--json": json_path, "--markdown": markdown_path}
    for option, path in outputs.items():
        if path:
            check_output_path(option, path)
    previous = _read_baseline(baseline) if baseline else None
    if fail_on == "new" and previous is None:
        raise ConfigError("--fail-on new needs --baseline PATH (a previous run's JSON report)")
    if list_only:
        from chatcontract.launch import load_run_spec, plan_for

        _print_plan(plan_for(load_run_spec(spec_path), options))
        return
    redactor = Redactor()
    console = Console(highlight=False, soft_wrap=False, width=_console_width())
    with prepare_run(options, tool_version=__version__, redactor=redactor) as prepared:
        if base_url is None:
            logging.getLogger("uvicorn.error").addFilter(_EXPECTED_SERVER_NOISE)
        ctx = prepared.ctx
        for pointer, message in ctx.spec.warnings:
            click.echo(f"{ctx.spec.source}: {pointer}: warning: {message}", err=True)
        _ensure_reachable(ctx.base_url, ctx.settings.connect_timeout)
        header = f"chatcontract {__version__}: {ctx.spec.source} against {ctx.base_url}"
        click.echo(redactor(header))
        for note in prepared.notes:
            click.echo(f"chatcontract: note: {note}", err=True)
        reporter = ConsoleReporter(console, console_mode(console, quiet=quiet))
        report, signal_number = _execute(prepared, reporter)
    diff = None
    if previous is not None:
        from chatcontract.report.diff import diff_reports

        diff = diff_reports(previous, report)
    code = _verdict(report, diff, fail_on=fail_on, allow_inconclusive=allow_inconclusive)
    _write_reports(report, diff, redactor, junit_path, json_path, markdown_path)
    if signal_number is not None:
        code = 128 + signal_number
    _print_verdict(console, report, code, allow_inconclusive, diff)
    _exit(code)


def _ensure_reachable(base_url: str, timeout: float) -> None:
    """Exit 3 with one line, before anything is printed, when nobody answers at all."""
    import asyncio

    from chatcontract.rest.http import ensure_reachable

    asyncio.run(ensure_reachable(base_url, timeout))


def _path_parameters(values: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        name, sep, given = value.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"invalid --path-param {value!r}: use NAME=VALUE, e.g. kernel_id=42")
        found[name.strip()] = given
    return found


def _read_baseline(path: str) -> RunReport:
    from chatcontract.report.json_report import read_report

    if not Path(path).is_file():
        raise ConfigError(f"--baseline {path}: no such file")
    return read_report(path)


def _execute(prepared: PreparedRun, reporter: ConsoleReporter) -> tuple[RunReport, int | None]:
    """Run the plan; SIGINT/SIGTERM cancel it and the report says *interrupted*."""
    import asyncio
    import signal

    from chatcontract.runner import execute

    ctx = prepared.ctx
    collected: list[RunReport] = []
    received: list[int] = []

    class _Keep:
        def handle(self, event: object) -> None:
            if isinstance(event, RunFinished):
                collected.append(event.report)

    async def main() -> RunReport:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for number in (signal.SIGINT, signal.SIGTERM):

            def stop(number: int = number) -> None:
                received.append(number)
                task.cancel()

            loop.add_signal_handler(number, stop)
        ctx.services.start(ctx.settings)  # the time budget starts now, for every category
        return await execute(ctx, prepared.plan, prepared.meta, [reporter, _Keep()])

    try:
        report = asyncio.run(main())
    except asyncio.CancelledError:
        if not collected:
            _fail("interrupted before any contract was judged", 128 + received[0])
        return collected[-1], (received[0] if received else signal.SIGINT)
    return report, None


def _verdict(
    report: RunReport,
    diff: RunDiff | None,
    *,
    fail_on: str,
    allow_inconclusive: bool,
) -> int:
    owned = report.owned
    code = exit_code(owned, allow_inconclusive=allow_inconclusive)
    if code == EXIT_VIOLATION and diff is not None and fail_on == "new":
        from chatcontract.report.diff import fail_on_exit

        if not fail_on_exit(diff, "new", report):
            code = exit_code(
                [r for r in owned if r.outcome is not Outcome.FAILED],
                allow_inconclusive=allow_inconclusive,
            )
    if code != EXIT_VIOLATION and report.meta.status is RunStatus.ABORTED:
        return EXIT_UNREACHABLE
    return code


def _write_reports(
    report: RunReport,
    diff: RunDiff | None,
    redactor: Callable[[str], str],
    junit_path: str | None,
    json_path: str | None,
    markdown_path: str | None,
) -> None:
    written: list[str] = []
    try:
        if junit_path:
            from chatcontract.report.junit import write_junit

            write_junit(junit_path, report.results, redact=redactor)
            written.append(f"JUnit XML written to {junit_path}")
        if json_path:
            from chatcontract.report.json_report import write_json

            write_json(json_path, report, diff)
            written.append(f"JSON report written to {json_path}")
        if markdown_path:
            from chatcontract.report.markdown import write_markdown

            write_markdown(markdown_path, report, diff)
            written.append(f"Markdown report written to {markdown_path}")
    except OSError as exc:
        click.echo(f"chatcontract: cannot write a report: {exc.strerror or exc}", err=True)
    for line in written:
        click.echo(line)


def _print_verdict(
    console: Console,
    report: RunReport,
    code: int,
    allow_inconclusive: bool,
    diff: RunDiff | None,
) -> None:
    if diff is not None:
        console.print(Text(f"Against the baseline: {_diff_line(diff)}"))
    strict = exit_code(report.owned)
    verdict = {
        EXIT_OK: ("ALL CONTRACTS HOLD", "bold green"),
        EXIT_VIOLATION: ("CONTRACTS VIOLATED", "bold red"),
        EXIT_INCONCLUSIVE: ("INCONCLUSIVE", "bold yellow"),
        EXIT_UNREACHABLE: ("ABORTED: THE TARGET BECAME UNREACHABLE", "bold red"),
    }
    if code >= 128:
        label, style = f"INTERRUPTED (signal {code - 128})", "bold yellow"
    else:
        label, style = verdict.get(code, verdict[EXIT_VIOLATION])
        if code == EXIT_OK and strict == EXIT_INCONCLUSIVE and allow_inconclusive:
            label = "INCONCLUSIVE (allowed by --allow-inconclusive)"
        elif code == EXIT_OK and strict == EXIT_VIOLATION:
            label = "NO NEW FAILURES (--fail-on new)"
    console.print(Text(f"{label} (exit {code})", style=style))


def _diff_line(diff: RunDiff) -> str:
    kinds = ("new_failures", "fixed", "still_failing", "new_contracts", "gone")
    line = ", ".join(f"{diff.count(kind)} {kind.replace('_', ' ')}" for kind in kinds)
    for entry in diff.new_failures[:10]:
        line += f"\n  NEW FAILURE {entry.tier} {entry.name} [{entry.id}]"
    return line


def _exit(code: int) -> NoReturn:
    """Exit; a cancelled worker thread (schemathesis' engine) must not hold the process."""
    import threading

    sys.stdout.flush()
    sys.stderr.flush()
    lingering = [
        t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon
    ]
    if lingering:
        # Everything judged is written; joining a thread stuck in a request would
        # only delay the exit past the budget or the interrupt the user asked for.
        os._exit(code)
    sys.exit(code)


@cli.group()
def report() -> None:
    """Work with JSON reports: merge shards."""


@report.command("merge")
@click.argument("reports", nargs=-1, required=True, metavar="REPORT.json...")
@click.option("--junit-xml", "junit_path", default=None, metavar="PATH")
@click.option("--json", "json_path", default=None, metavar="PATH")
@click.option("--markdown", "markdown_path", default=None, metavar="PATH")
@click.option("--baseline", default=None, metavar="PATH", help="Diff the merged run against it.")
def report_merge(
    reports: tuple[str, ...],
    junit_path: str | None,
    json_path: str | None,
    markdown_path: str | None,
    baseline: str | None,
) -> None:
    """Combine shard reports (run --shard K/N --json ...) into one report in every format.

    Exits like ``chatcontract run`` would have for the whole plan.
    """
    from chatcontract.redact import Redactor
    from chatcontract.report.json_report import read_report
    from chatcontract.report.merge import merge_reports

    for option, path in {
        "--junit-xml": junit_path,
        "--json": json_path,
        "--markdown": markdown_path,
    }.items():
        if path:
            from chatcontract.launch import check_output_path

            check_output_path(option, path)
    for path in reports:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such report")
    loaded = [read_report(path) for path in reports]
    merged = merge_reports(loaded, sources=list(reports), order=_plan_order(loaded[0]))
    diff = None
    if baseline:
        from chatcontract.report.diff import diff_reports

        diff = diff_reports(_read_baseline(baseline), merged)
    _write_reports(merged, diff, Redactor(), junit_path, json_path, markdown_path)
    console = Console(highlight=False, soft_wrap=False, width=_console_width())
    ConsoleReporter(console, "quiet").handle(RunFinished(merged))
    code = _verdict(merged, diff, fail_on="any", allow_inconclusive=False)
    _print_verdict(console, merged, code, False, diff)
    sys.exit(code)


class _ServerNoise(logging.Filter):
    """uvicorn lines the embedded server logs by design while it is being tested.

    schemathesis' probes send malformed requests on purpose, and refusing a
    WebSocket handshake means closing before accept; neither is a server bug.
    """

    _EXPECTED = ("Invalid HTTP request received", "ASGI callable returned without completing")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._EXPECTED)


_EXPECTED_SERVER_NOISE = _ServerNoise()


def _plan_order(report: RunReport) -> tuple[str, ...]:
    """The plan's id order, when the spec the shards ran is still where they found it."""
    from chatcontract.launch import load_run_spec, spec_digest
    from chatcontract.runner import build_plan

    try:
        spec = load_run_spec(report.meta.spec_source)
    except ChatContractError:
        return ()
    if spec_digest(spec) != report.meta.spec_sha256:
        return ()
    return tuple(c.id for c in build_plan(spec).contracts)


def _console_width() -> int:
    import shutil

    # CI logs have no terminal; 80 columns would fold every finding into a ribbon.
    return max(shutil.get_terminal_size((160, 24)).columns, 120)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SpecError as exc:
        for line in exc.lines():
            click.echo(_SHAPES(line), err=True)
        sys.exit(EXIT_USAGE)
    except TargetUnreachable as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
    except ConfigError as exc:
        _fail(str(exc))
    except ChatContractError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        _fail(f"internal error (please report): {type(exc).__name__}: {exc}", EXIT_INTERNAL)
