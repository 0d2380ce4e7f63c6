"""End to end: credentials planted in ``chatcontract run`` never leave the process.

A real process (the installed console script) checks a reference server reached
through ``--base-url http://planteduser:<password>@127.0.0.1:PORT`` with planted
tokens, client secret and signing key in the environment; then stdout, stderr
and every report are searched for each planted value: raw, URL-encoded and
base64 (the Basic form of the userinfo included).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from chatcontract.reference.server import RunningReference, running_reference
from chatcontract.reference.tokens import mint_token

USER = "planteduser"
PASSWORD = "Pl@nted/Passw0rd!"  # '@' and '/' must be percent-encoded in the URL
CLIENT_SECRET = "planted-client-secret-6e1f0b"
JTI = "planted0jti0f00d"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.")
CLI = Path(sys.executable).parent / "chatcontract"


def _cli() -> str:
    found = str(CLI) if CLI.exists() else shutil.which("chatcontract")
    assert found, "the chatcontract console script is not installed"
    return found


def userinfo_url(base: str) -> str:
    """``base`` (http://127.0.0.1:PORT) with the planted credentials as userinfo."""
    return base.replace("://", f"://{USER}:{quote(PASSWORD, safe='')}@", 1)


def _b64(text: str) -> set[str]:
    raw = text.encode()
    return {
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def planted_forms(*secrets: str) -> dict[str, str]:
    """Every planted value in every form it could leak in, named for the failure message."""
    forms = {
        "password": PASSWORD,
        "password, URL-encoded": quote(PASSWORD, safe=""),
        "password, form-encoded": quote_plus(PASSWORD),
        "password's distinctive part": "Passw0rd",
        "user name of the userinfo": USER,
        "user:password": f"{USER}:{PASSWORD}",
    }
    forms |= {f"Basic credential {b}": b for b in _b64(f"{USER}:{PASSWORD}")}
    forms |= {f"password in base64 {b}": b for b in _b64(PASSWORD)}
    for secret in secrets:
        forms[f"secret {secret[:12]}…"] = secret
        forms |= {f"secret {secret[:12]}… in base64": b for b in _b64(secret)}
        if secret.count(".") == 2:  # a JWT: its claims and signature alone
            _, claims, signature = secret.split(".")
            forms |= {"a token's claims": claims, "a token's signature": signature}
    return forms


@dataclass(frozen=True)
class Outputs:
    returncode: int
    texts: dict[str, str]  # stdout, stderr and each report that was written

    @property
    def stdout(self) -> str:
        return self.texts["stdout"]

    def leaks(self, forms: dict[str, str]) -> list[str]:
        return [
            f"{label} in {where}"
            for where, text in self.texts.items()
            for label, value in forms.items()
            if value in text
        ]


def run_chatcontract(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 100
) -> Outputs:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATCONTRACT_")}
    clean.update({"COLUMNS": "200", "NO_COLOR": "1"}, **(env or {}))
    reports = {name: cwd / name for name in ("junit.xml", "report.json", "report.md")}
    done = subprocess.run(
        [_cli(), "run", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    texts |= {name: path.read_text() for name, path in reports.items() if path.exists()}
    return Outputs(done.returncode, texts)


REPORT_ARGS = ("--junit-xml", "junit.xml", "--json", "report.json", "--markdown", "report.md")


@pytest.fixture
def reference() -> Iterator[RunningReference]:
    """The two missing stream routes of the status report: inventory failures whose curl
    reproductions carry the base URL."""
    with running_reference(faults=frozenset({"staging-2025-09"})) as server:
        yield server


def _tokens(server: RunningReference) -> dict[str, str]:
    return {
        "CHATCONTRACT_TOKEN_ALICE": mint_token("alice", server.config, jti=JTI),
        "CHATCONTRACT_TOKEN_BOB": mint_token("bob", server.config),
        "CHATCONTRACT_CLIENT_SECRET": CLIENT_SECRET,
    }


@pytest.mark.timeout(120)
def test_the_embedded_reference_run_prints_no_credential(tmp_path: Path) -> None:
    from chatcontract.reference.config import DEFAULT_CLIENT_SECRET, DEFAULT_SIGNING_KEY

    done = run_chatcontract(
        "--category", "inventory", "--max-examples", "2", *REPORT_ARGS, cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.texts["stderr"][-2000:]
    assert "junit.xml" in done.texts
    for where, text in done.texts.items():
        assert not JWT.search(text), where
        assert DEFAULT_CLIENT_SECRET not in text, where
        assert DEFAULT_SIGNING_KEY not in text, where


@pytest.mark.timeout(120)
def test_base_url_credentials_never_reach_the_console_or_a_report(
    tmp_path: Path, reference: RunningReference
) -> None:
    env = _tokens(reference)
    done = run_chatcontract(
        "--base-url",
        userinfo_url(reference.url),
        "--category",
        "inventory",
        "--max-examples",
        "2",
        *REPORT_ARGS,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.texts["stderr"][-2000:]
    assert set(done.texts) >= {"stdout", "stderr", "junit.xml"}
    # Not vacuous: the URL is printed (header line, curl reproductions), the userinfo is
    # neither sent (it would replace the bearer token) nor shown, and the user is told so.
    port = reference.url.rsplit(":", 1)[1]
    assert f"against http://127.0.0.1:{port}\n" in done.stdout
    assert f"http://127.0.0.1:{port}/" in done.texts["junit.xml"]
    assert "the user:password in --base-url is not sent" in done.texts["stderr"]
    assert done.leaks(planted_forms(*env.values())) == []


@pytest.mark.timeout(180)
def test_a_full_failing_run_leaks_no_planted_credential(tmp_path: Path) -> None:
    """Every category with findings: REST repros, SSE transcripts, WebSocket frames,
    handshakes and websocat lines, all through a base URL with a password in it."""
    faults = frozenset({"response-drift", "events-out-of-order", "ws-accepts-query-token"})
    with running_reference(faults=faults) as server:
        env = _tokens(server) | {"CHATCONTRACT_SIGNING_KEY": server.config.signing_key}
        done = run_chatcontract(
            "--base-url",
            userinfo_url(server.url),
            "--max-examples",
            "2",
            *REPORT_ARGS,
            cwd=tmp_path,
            env=env,
            timeout=150,
        )
    assert done.returncode in (1, 4), done.stdout[-3000:] + done.texts["stderr"][-2000:]
    for category in ("rest", "sse", "websocket"):
        assert f'classname="{category}"' in done.texts["junit.xml"]
    assert "the user:password in --base-url is not sent" in done.texts["stderr"]
    assert done.leaks(planted_forms(*env.values())) == []
    for where, text in done.texts.items():
        assert not JWT.search(text), where


def _closed_port_url() -> str:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


ERROR_CASES: dict[str, tuple[Callable[[], str], int]] = {
    "port out of range": (lambda: "http://127.0.0.1:99999", 2),
    "not http": (lambda: "ftp://127.0.0.1:21", 2),
    "unreachable": (_closed_port_url, 3),
}


def _run_error_case(case: str, tmp_path: Path) -> Outputs:
    make_url, _ = ERROR_CASES[case]
    env = {"CHATCONTRACT_TOKEN": "planted-token-0123456789"}
    url = userinfo_url(make_url())
    return run_chatcontract("--base-url", url, "--category", "inventory", cwd=tmp_path, env=env)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_a_bad_or_unreachable_base_url_is_one_error_line(case: str, tmp_path: Path) -> None:
    done = _run_error_case(case, tmp_path)
    assert done.returncode == ERROR_CASES[case][1], done.texts
    assert len(done.texts["stderr"].strip().splitlines()) == 1
    assert "Traceback" not in done.texts["stderr"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_the_error_line_of_a_bad_base_url_carries_no_password(case: str, tmp_path: Path) -> None:
    done = _run_error_case(case, tmp_path)
    assert done.leaks(planted_forms("planted-token-0123456789")) == []
