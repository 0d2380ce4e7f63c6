"""The ``chatcontract`` command line.

Exit codes: 0 every contract holds; 1 a contract was violated; 2 bad usage or
a bad spec; 3 the target cannot be reached; 4 no violation, but a P1 contract
could not be judged (inconclusive, e.g. credentials rejected).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from chatcontract import __version__
from chatcontract.context import RunContext, RunSettings
from chatcontract.errors import ChatContractError, ConfigError, SpecError, TargetUnreachable
from chatcontract.report.model import ContractResult, Outcome

__all__ = ["EXIT_INCONCLUSIVE", "exit_code", "main"]

SIGNING_KEY_ENV = "CHATCONTRACT_SIGNING_KEY"
EXIT_OK, EXIT_VIOLATION, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_INTERNAL = 70  # EX_SOFTWARE: chatcontract itself failed
EXIT_INCONCLUSIVE = 4


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"chatcontract: {message}", err=True)
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
    from chatcontract.spec import lint as lint_spec

    where, problems = lint_spec(Path(spec) if not spec.startswith("http") else spec)
    for pointer, message in problems:
        click.echo(f"{where}: {pointer}: {message}")
    if problems:
        sys.exit(EXIT_USAGE)
    click.echo(f"{where}: ok")


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


def _default_spec() -> Path:
    from chatcontract.spec import bundled_spec_path

    local = Path("openapi.yaml")
    return local if local.is_file() else bundled_spec_path()


def _category_names() -> list[str]:
    import importlib

    from chatcontract.rest import CATEGORY_MODULES
    from chatcontract.runner import categories

    for module in CATEGORY_MODULES:
        importlib.import_module(module)
    return [c.name for c in categories()]


_STYLE = {
    Outcome.PASSED: "green",
    Outcome.FAILED: "bold red",
    Outcome.INCONCLUSIVE: "bold yellow",
    Outcome.SKIPPED: "dim",
}


def _condensed(text: str, limit: int = 400) -> str:
    """One line: the console shows the gist, the JUnit report keeps every line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _first_line(result: ContractResult) -> str:
    if result.failures:
        text = result.failures[0].line()
    elif result.reason:
        text = result.reason
    elif result.warnings:
        text = "warning: " + result.warnings[0].line()
    else:
        text = ""
    return _condensed(text, 160)


def _print_summary(
    console: Console,
    results: Sequence[ContractResult],
    elapsed: float,
    code: int,
    *,
    allowed: bool = False,
) -> None:
    table = Table(show_lines=False, pad_edge=False, expand=False)
    table.add_column("outcome", no_wrap=True)
    table.add_column("tier", no_wrap=True)
    table.add_column("contract", overflow="fold")
    table.add_column("first finding / reason", overflow="fold")
    for r in results:
        outcome = Text(r.outcome.value.upper(), style=_STYLE[r.outcome])
        table.add_row(outcome, r.tier, Text(r.name), Text(_first_line(r)))
    console.print(table)
    failed = [r for r in results if r.outcome is Outcome.FAILED]
    for r in failed:
        console.print(Text(f"\nFAILED {r.name} [{r.id}]", style="bold red"))
        for finding in r.failures[:3]:
            console.print(Text(f"  - {_condensed(finding.line())}"))
            if finding.repro:
                repro = "\n      ".join(finding.repro.splitlines())
                console.print(Text(f"    reproduce: {repro}", style="cyan"))
        if len(r.failures) > 3:
            console.print(Text(f"  ... and {len(r.failures) - 3} more"))
    counts = {o: sum(1 for r in results if r.outcome is o) for o in Outcome}
    line = ", ".join(f"{counts[o]} {o.value}" for o in Outcome)
    console.print(Text(f"\n{len(results)} contracts: {line} in {elapsed:.1f} s"))
    p1 = [r for r in results if r.outcome is Outcome.INCONCLUSIVE and r.tier == "P1"]
    if p1:
        reasons = sorted({r.reason for r in p1 if r.reason})
        console.print(
            Text(
                f"INCONCLUSIVE: {len(p1)} P1 contract(s) could not be judged; this run proves "
                f"nothing about them. {reasons[0] if reasons else ''}".rstrip(),
                style="bold yellow",
            )
        )
    if not results:
        console.print(Text("INCONCLUSIVE: no contract was judged", style="bold yellow"))
    verdict = {
        EXIT_OK: ("ALL CONTRACTS HOLD", "bold green"),
        EXIT_VIOLATION: ("CONTRACTS VIOLATED", "bold red"),
        EXIT_INCONCLUSIVE: ("INCONCLUSIVE", "bold yellow"),
    }[code]
    label = verdict[0] + (" (allowed by --allow-inconclusive)" if allowed else "")
    console.print(Text(f"{label} (exit {EXIT_OK if allowed else code})", style=verdict[1]))


async def _execute(
    ctx: RunContext, selected: list[str] | None, header: str
) -> tuple[list[ContractResult], float]:
    import time

    from chatcontract.rest.http import ensure_reachable
    from chatcontract.runner import run_contracts

    started = time.monotonic()
    ctx.services.start(ctx.settings)  # the time budget starts now, for every category
    await ensure_reachable(ctx.base_url, ctx.settings.connect_timeout)
    click.echo(header)
    results = await run_contracts(ctx, selected)
    return results, time.monotonic() - started


@cli.command(help=_RUN_HELP)
@click.option(
    "--spec",
    "spec_path",
    default=None,
    metavar="PATH",
    help="The OpenAPI 3.2 spec (default: ./openapi.yaml, else the bundled one).",
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
@click.option(
    "--junit-xml",
    "junit_path",
    default=None,
    metavar="PATH",
    help="Also write a JUnit XML report here.",
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
    "--category",
    "selected",
    multiple=True,
    metavar="NAME",
    help="Run only this category (repeatable).",
)
@click.option(
    "--time-budget",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Stop starting new work after this many seconds.",
)
@click.option(
    "--rate-limit",
    default=None,
    metavar="N/s",
    help="Pace requests, e.g. 10/s or 300/m (be gentle with staging).",
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
def run(
    spec_path: str | None,
    base_url: str | None,
    faults: str,
    junit_path: str | None,
    seed: int,
    max_examples: int,
    selected: tuple[str, ...],
    time_budget: float | None,
    rate_limit: str | None,
    request_budget: int,
    allow_inconclusive: bool,
    check_limits: bool,
) -> None:
    import asyncio
    import contextlib
    from dataclasses import replace

    from chatcontract.auth import credentials_from_env
    from chatcontract.budget import parse_rate_limit
    from chatcontract.redact import Redactor
    from chatcontract.spec import load_spec

    if rate_limit is not None:
        parse_rate_limit(rate_limit)
    if base_url is not None:
        _check_base_url(base_url)
    if faults and base_url:
        raise ConfigError("--faults applies only to the embedded reference server (no --base-url)")
    known = _category_names()
    unknown = [name for name in selected if name not in known]
    if unknown:
        raise ConfigError(f"unknown category {unknown[0]!r}; known: {', '.join(known)}")
    remote = spec_path is not None and spec_path.startswith(("http://", "https://"))
    spec = load_spec(spec_path if remote else Path(spec_path) if spec_path else _default_spec())
    settings = RunSettings(
        seed=seed,
        max_examples=max_examples,
        rate_limit=rate_limit,
        time_budget=time_budget,
        request_budget=request_budget,
    )
    redactor = Redactor()
    console = Console(highlight=False, soft_wrap=False, width=_console_width())
    with contextlib.ExitStack() as stack:
        if base_url is None:
            from chatcontract.reference.faults import parse_faults
            from chatcontract.reference.server import running_reference

            reference = stack.enter_context(running_reference(faults=parse_faults(faults)))
            logging.getLogger("uvicorn.error").addFilter(_EXPECTED_SERVER_NOISE)
            target = reference.url
            settings = replace(
                settings,
                target_is_reference=True,
                check_limits=True,
                signing_key=reference.config.signing_key,
            )
            # The embedded server only knows its own users: ignore credentials meant elsewhere.
            environment: dict[str, str] | None = {}
        else:
            target = base_url.rstrip("/")
            environment = None  # os.environ
            # A key lets the auth matrix forge expired/nbf/iss/aud tokens; secrets
            # come from the environment only, never from flags.
            key = os.environ.get(SIGNING_KEY_ENV) or None
            redactor.add(key)
            settings = replace(settings, signing_key=key, check_limits=check_limits)
        credentials = credentials_from_env(
            spec,
            target,
            environment,
            on_secret=redactor.add,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )
        for secret in credentials.secrets():
            redactor.add(secret)
        ctx = RunContext(spec, target, credentials, settings, redactor=redactor)
        header = redactor(f"chatcontract {__version__}: {spec.source} against {target}")
        try:
            results, elapsed = asyncio.run(_execute(ctx, list(selected) or None, header))
        except TargetUnreachable as exc:
            _fail(redactor(str(exc)), EXIT_UNREACHABLE)
    strict = exit_code(results)
    code = exit_code(results, allow_inconclusive=allow_inconclusive)
    _print_summary(console, results, elapsed, strict, allowed=code != strict)
    if junit_path:
        from chatcontract.report.junit import write_junit

        try:
            write_junit(junit_path, results, redact=redactor)
        except OSError as exc:
            raise ConfigError(f"cannot write {junit_path}: {exc.strerror or exc}") from None
        click.echo(f"JUnit XML written to {junit_path}")
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


def _console_width() -> int:
    import shutil

    # CI logs have no terminal; 80 columns would fold every finding into a ribbon.
    return max(shutil.get_terminal_size((160, 24)).columns, 120)


def _check_base_url(base_url: str) -> None:
    import httpx

    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(f"invalid --base-url {base_url!r}: {exc}") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise ConfigError(f"invalid --base-url {base_url!r}: port {url.port} is out of range")
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"invalid --base-url {base_url!r}: use http(s)://host[:port][/prefix]")


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SpecError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
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
