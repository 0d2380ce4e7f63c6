"""One way to set a run up, shared by the CLI and the pytest plugin.

:func:`prepare_run` turns :class:`RunOptions` into a ready :class:`PreparedRun`:
the spec loaded, the plan built and narrowed, the embedded reference server
started when no target is given (with its own credentials and signing key,
never the environment's), credentials for any other target from the
environment, secrets registered with the redactor, and the report metadata.
Everything that can be wrong with the options is found here, before the
first request.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import platform
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from chatcontract.context import RunContext, RunSettings
from chatcontract.errors import ConfigError
from chatcontract.plan import Plan, Selection
from chatcontract.redact import Redactor
from chatcontract.report.model import RunMeta
from chatcontract.spec import Spec, bundled_spec_path, load_spec

__all__ = [
    "SIGNING_KEY_ENV",
    "PreparedRun",
    "RunOptions",
    "check_base_url",
    "check_output_path",
    "library_versions",
    "load_run_spec",
    "prepare_run",
    "spec_digest",
]

SIGNING_KEY_ENV = "CHATCONTRACT_SIGNING_KEY"
_LIBRARIES = ("schemathesis", "hypothesis", "httpx", "websockets", "jsonschema-rs")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything a run can be asked for, from the CLI or from pytest options."""

    spec: str | None = None
    """A path or an http(s) URL; None: ./openapi.yaml, else the bundled chat API spec."""
    base_url: str | None = None
    """None: start the embedded reference server."""
    faults: str = ""
    seed: int = 0
    max_examples: int = 25
    time_budget: float | None = None
    rate_limit: str | None = None
    request_budget: int = 5_000
    check_limits: bool = False
    cache_dir: str | None = None
    """Where run state (hypothesis' files) lives; None: the user's cache folder."""
    path_parameters: Mapping[str, str] = field(default_factory=dict)
    """Values for ``{name}`` in WebSocket URLs when the spec's links and examples give none."""
    selection: Selection = field(default_factory=Selection)
    environment: Mapping[str, str] | None = None
    """Where credentials come from for an external target; None: ``os.environ``."""


@dataclass(slots=True)
class PreparedRun:
    ctx: RunContext
    plan: Plan
    meta: RunMeta
    notes: list[str] = field(default_factory=list)
    """One-line remarks for the console (already redacted)."""


def load_run_spec(spec: str | None) -> Spec:
    if spec is None:
        local = Path("openapi.yaml")
        return load_spec(local if local.is_file() else bundled_spec_path())
    if spec.startswith(("http://", "https://")):
        return load_spec(spec)
    return load_spec(Path(spec))


def spec_digest(spec: Spec) -> str:
    """sha256 of the document in canonical JSON: equal for equal specs, whatever the file."""
    canonical = orjson.dumps(spec.document, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _LIBRARIES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def check_base_url(base_url: str) -> None:
    import httpx

    try:
        url = httpx.URL(base_url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigError(f"invalid --base-url {base_url!r}: {exc}") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise ConfigError(f"invalid --base-url {base_url!r}: port {url.port} is out of range")
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"invalid --base-url {base_url!r}: use http(s)://host[:port][/prefix]")


def check_output_path(option: str, path: str) -> None:
    """Fail before the first request when a report could not be written at the end."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"cannot write {option} {path}: it is a directory")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"cannot write {option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"cannot write {option} {path}: permission denied")


def _settings(options: RunOptions) -> RunSettings:
    return RunSettings(
        seed=options.seed,
        max_examples=options.max_examples,
        rate_limit=options.rate_limit,
        time_budget=options.time_budget,
        request_budget=options.request_budget,
        check_limits=options.check_limits,
        cache_dir=Path(options.cache_dir) if options.cache_dir else None,
        path_parameters=dict(options.path_parameters),
    )


def validate(options: RunOptions) -> None:
    """Every usage error the options can hold, as a one-line :class:`ConfigError`."""
    from chatcontract.budget import parse_rate_limit

    if options.rate_limit is not None:
        parse_rate_limit(options.rate_limit)
    if options.base_url is not None:
        check_base_url(options.base_url)
    if options.faults and options.base_url:
        raise ConfigError("--faults applies only to the embedded reference server (no --base-url)")
    if options.faults:
        from chatcontract.reference.faults import parse_faults

        parse_faults(options.faults)
    if options.cache_dir is not None and Path(options.cache_dir).is_file():
        raise ConfigError(f"invalid --cache-dir {options.cache_dir}: it is a file")


def plan_for(spec: Spec, options: RunOptions) -> Plan:
    from chatcontract.runner import build_plan

    return build_plan(spec, _settings(options)).select(options.selection)


@contextlib.contextmanager
def prepare_run(
    options: RunOptions, *, tool_version: str, redactor: Redactor | None = None
) -> Iterator[PreparedRun]:
    """Load, plan, start the reference if needed, build credentials; yield the ready run."""
    from chatcontract.auth import credentials_from_env

    validate(options)
    spec = load_run_spec(options.spec)
    plan = plan_for(spec, options)
    settings = _settings(options)
    redactor = redactor or Redactor()
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        if options.base_url is None:
            from chatcontract.reference.faults import parse_faults
            from chatcontract.reference.server import running_reference

            reference = stack.enter_context(running_reference(faults=parse_faults(options.faults)))
            target = reference.url
            settings = replace(
                settings,
                target_is_reference=True,
                check_limits=True,
                signing_key=reference.config.signing_key,
            )
            # The embedded server only knows its own users: ignore credentials meant elsewhere.
            environment: Mapping[str, str] | None = {}
        else:
            target = options.base_url.rstrip("/")
            redactor.add_url(target)
            bare = _without_userinfo(target)
            if bare != target:
                notes.append(
                    "the user:password in --base-url is not sent: it would replace the API's "
                    "bearer token on every request (set CHATCONTRACT_TOKEN or client credentials)"
                )
                target = bare
            environment = options.environment
            # A key lets the auth matrix forge expired/nbf/iss/aud tokens; secrets
            # come from the environment only, never from flags.
            env = os.environ if environment is None else environment
            key = env.get(SIGNING_KEY_ENV) or None
            redactor.add(key)
            settings = replace(settings, signing_key=key)
        redactor.add_url(target)
        if options.spec and options.spec.startswith(("http://", "https://")):
            redactor.add_url(options.spec)
        for ws in spec.websockets:
            for carrier in (*ws.carriers, *ws.forbidden_carriers):
                if carrier.kind == "subprotocol" and carrier.token_prefix:
                    redactor.add_subprotocol_prefix(carrier.token_prefix)
        credentials = credentials_from_env(
            spec,
            target,
            environment,
            target_is_reference=settings.target_is_reference,
            on_secret=redactor.add,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )
        for secret in credentials.secrets():
            redactor.add(secret)
        ctx = RunContext(spec, target, credentials, settings, redactor=redactor)
        meta = RunMeta(
            tool_version=tool_version,
            spec_source=spec.source,
            spec_sha256=spec_digest(spec),
            spec_title=spec.title,
            target=redactor(target),
            seed=options.seed,
            shard=options.selection.shard,
            selection=options.selection.describe(),
            faults=tuple(sorted(f for f in options.faults.split(",") if f.strip())),
            versions=library_versions(),
        )
        yield PreparedRun(ctx, plan, meta, [redactor(note) for note in notes])


def _without_userinfo(url: str) -> str:
    import httpx

    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url
    return str(parsed.copy_with(username=None, password=None)).rstrip("/")
