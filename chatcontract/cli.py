"""The ``chatcontract`` command line.

Exit codes: 0 every contract holds; 1 a contract was violated; 2 bad usage or
a bad spec; 3 the target cannot be reached.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chatcontract import __version__
from chatcontract.errors import ChatContractError, ConfigError, SpecError

__all__ = ["main"]

EXIT_OK, EXIT_VIOLATION, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def _fail(message: str, code: int = EXIT_USAGE) -> None:
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


def main() -> None:
    try:
        cli(standalone_mode=True)
    except SpecError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        sys.exit(EXIT_USAGE)
    except ConfigError as exc:
        _fail(str(exc))
    except ChatContractError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
