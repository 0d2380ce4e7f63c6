"""`chatcontract lint`: a valid spec passes; each broken spec gives located one-line errors."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from chatcontract.cli import cli
from chatcontract.spec import bundled_spec_path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi.yaml"
LINE = re.compile(r"^(?P<file>[^:]+): (?P<where>/\S*|line \d+, column \d+|byte \d+): (?P<msg>.+)$")

Doc = dict[str, Any]


def _base() -> Doc:
    return yaml.safe_load(SPEC.read_text())


def _ws(doc: Doc) -> Doc:
    return doc["paths"]["/ws"]["get"]["x-websocket"]


def _mutate(fn: Callable[[Doc], object]) -> Callable[[], str]:
    def build() -> str:
        doc = copy.deepcopy(_base())
        fn(doc)
        return yaml.safe_dump(doc, sort_keys=False)

    return build


def _text(text: str) -> Callable[[], str]:
    return lambda: text


def _set(doc: Doc, path: list[Any], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(doc: Doc, path: list[Any]) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]


HEALTH_SCHEMA = ["paths", "/health", "get", "responses", "200", "content", "application/json"]

# (id, spec text factory, expected location, expected message fragment)
BROKEN: list[tuple[str, Callable[[], str], str, str]] = [
    ("yaml-syntax-error", _text("openapi: 3.2.0\ninfo: [\n"), "line 3, column 1", "YAML syntax"),
    (
        "yaml-duplicate-key",
        _text("openapi: 3.2.0\ninfo:\n  title: a\n  title: b\n"),
        "line 4, column 3",
        "duplicate key 'title'",
    ),
    ("empty-file", _text(""), "/", "top level is empty"),
    ("top-level-list", _text("- a\n- b\n"), "/", "top level is list"),
    ("not-openapi", _text("hello: world\n"), "/openapi", "not an OpenAPI 3.x document"),
    ("swagger-2", _text("swagger: '2.0'\ninfo: {}\n"), "/openapi", "Swagger 2.0"),
    (
        "unsupported-version",
        _mutate(lambda d: d.__setitem__("openapi", "4.0.0")),
        "/openapi",
        "unsupported OpenAPI version",
    ),
    (
        "dangling-ref",
        _mutate(lambda d: _set(d, [*HEALTH_SCHEMA, "schema", "$ref"], "#/components/schemas/Nope")),
        "/paths/~1health/get/responses/200/content/application~1json/schema/$ref",
        "dangling $ref",
    ),
    (
        "external-ref",
        _mutate(lambda d: _set(d, [*HEALTH_SCHEMA, "schema", "$ref"], "other.yaml#/Health")),
        "/paths/~1health/get/responses/200/content/application~1json/schema/$ref",
        "external $ref",
    ),
    (
        "info-not-object",
        _mutate(lambda d: d.__setitem__("info", 5)),
        "/info",
        "is not of type",
    ),
    (
        "operation-without-responses",
        _mutate(lambda d: _delete(d, ["paths", "/health", "get", "responses"])),
        "/paths/~1health/get/responses",
        "documents no responses",
    ),
    (
        "duplicate-operation-id",
        _mutate(lambda d: _set(d, ["paths", "/health/live", "get", "operationId"], "getHealth")),
        "/paths/~1health~1live/get/operationId",
        "duplicate operationId 'getHealth'",
    ),
    (
        "invalid-tier",
        _mutate(lambda d: _set(d, ["paths", "/health", "get", "x-tier"], "P3")),
        "/paths/~1health/get/x-tier",
        "P3",
    ),
    (
        # Without auth.carriers the security scheme says where the token goes; HTTP
        # basic names no place for one token.
        "websocket-without-carriers-basic-scheme",
        _mutate(
            lambda d: (
                _delete(_ws(d)["auth"], ["carriers"]),
                _set(d, ["paths", "/ws", "get", "security"], [{"basic": []}]),
                _set(
                    d,
                    ["components", "securitySchemes", "basic"],
                    {"type": "http", "scheme": "basic"},
                ),
            )
        ),
        "/paths/~1ws/get/x-websocket/auth/carriers",
        "names no place one token can travel",
    ),
    (
        "websocket-empty-carriers",
        _mutate(lambda d: _set(_ws(d)["auth"], ["carriers"], [])),
        "/paths/~1ws/get/x-websocket/auth/carriers",
        "",
    ),
    (
        "websocket-flow-unknown-type",
        _mutate(lambda d: _set(_ws(d)["flows"][0], ["send"], "teleport")),
        "/paths/~1ws/get/x-websocket/flows/0/send",
        "unknown client type 'teleport'",
    ),
    (
        "websocket-welcome-without-schema",
        _mutate(lambda d: _set(_ws(d)["welcome"], ["type"], "hello")),
        "/paths/~1ws/get/x-websocket/welcome/type",
        "has no server schema",
    ),
    (
        "websocket-message-schema-mismatch",
        _mutate(
            lambda d: _set(
                _ws(d)["messages"]["client"], ["pong"], _ws(d)["messages"]["client"]["ping"]
            )
        ),
        "/paths/~1ws/get/x-websocket/messages/client/pong",
        "fixes 'type' to 'ping'",
    ),
    (
        "websocket-message-without-schema",
        _mutate(lambda d: _set(_ws(d)["messages"]["client"], ["ping"], {})),
        "/paths/~1ws/get/x-websocket/messages/client/ping",
        "has no schema",
    ),
    (
        "sequence-unknown-event",
        _mutate(
            lambda d: d["components"]["x-sequences"]["agent-run"]["events"].append("agent_dreaming")
        ),
        "/components/x-sequences/agent-run/events",
        "unknown event type 'agent_dreaming'",
    ),
    (
        "sequence-terminal-out-of-scope",
        _mutate(
            lambda d: d["components"]["x-sequences"]["agent-run"]["terminal"].append("stream_end")
        ),
        "/components/x-sequences/agent-run/terminal",
        "not among the sequence's events",
    ),
    (
        "sequence-missing-terminal",
        _mutate(lambda d: _delete(d["components"]["x-sequences"]["agent-run"], ["terminal"])),
        "/components/x-sequences/agent-run",
        "terminal",
    ),
    (
        "unknown-sequence-reference",
        _mutate(lambda d: _set(d, ["paths", "/api/agents/stream", "post", "x-sequence"], ["nope"])),
        "/paths/~1api~1agents~1stream/post/x-sequence",
        "unknown sequence 'nope'",
    ),
    (
        "stream-bad-event-type-source",
        _mutate(
            lambda d: _set(
                d, ["paths", "/api/chat/stream", "post", "x-stream", "event-type-from"], "header"
            )
        ),
        "/paths/~1api~1chat~1stream/post/x-stream/event-type-from",
        "header",
    ),
    (
        "request-body-not-generatable",
        _mutate(
            lambda d: _set(
                d,
                ["paths", "/api/threads", "post", "requestBody", "content", "application/json"],
                {"schema": {}},
            )
        ),
        "/paths/~1api~1threads/post/requestBody/content/application~1json",
        "neither an example nor a generatable schema",
    ),
]


def test_the_chat_api_spec_is_valid() -> None:
    """The repository's contract must lint clean; every checker derives from it."""
    result = CliRunner().invoke(cli, ["lint", str(SPEC)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(": ok")


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [pytest.param(text, where, fragment, id=name) for name, text, where, fragment in BROKEN],
)
def test_broken_spec_gives_located_one_line_errors(
    tmp_path: Path, text: Callable[[], str], where: str, fragment: str
) -> None:
    """Each problem must name the file and the JSON pointer (or line) so it can be fixed."""
    path = tmp_path / "broken.yaml"
    path.write_text(text())
    result = CliRunner().invoke(cli, ["lint", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines, "no problem reported"
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert any(
        m is not None and m["file"] == str(path) and m["where"] == where and fragment in m["msg"]
        for m in parsed
    ), lines
    assert "Traceback" not in result.output


def test_broken_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 15


def test_lint_of_a_missing_file_is_one_line_exit_2(tmp_path: Path) -> None:
    """Run as a user would (a real process): no traceback, one line, exit 2."""
    missing = tmp_path / "nope.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "chatcontract", "lint", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    out = (proc.stdout + proc.stderr).strip().splitlines()
    assert out == [f"{missing}: /: no such file"]


def test_bundled_spec_is_the_repository_spec() -> None:
    """The package ships the same contract the repository edits."""
    assert bundled_spec_path().read_text() == SPEC.read_text()
