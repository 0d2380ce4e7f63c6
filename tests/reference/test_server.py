"""Running the server: persistence across restarts, the CLI entry point, configuration."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chatcontract.errors import ConfigError
from chatcontract.reference import FAULTS, ServerConfig, mint_token, running_reference, serve_main
from chatcontract.reference.faults import parse_faults, validate_faults

from .helpers import TIMEOUT, validate_response_hook


def _client(url: str, config: ServerConfig, user: str = "alice") -> httpx.Client:
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {mint_token(user, config)}"},
        timeout=TIMEOUT,
        event_hooks={"response": [validate_response_hook]},
    )


def test_threads_and_messages_survive_a_restart_with_the_same_db(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.sqlite3")
    with running_reference(db=db) as server, _client(server.url, server.config) as me:
        tid = me.post("/api/threads", json={"title": "kept", "metadata": {"a": "b"}}).json()["id"]
        me.post("/api/chat/messages", json={"content": "remember me", "thread_id": tid})
    with running_reference(db=db) as server, _client(server.url, server.config) as me:
        thread = me.get(f"/api/threads/{tid}").json()
        assert (thread["title"], thread["metadata"], thread["message_count"]) == (
            "kept",
            {"a": "b"},
            1,
        )
        items = me.get(f"/api/threads/{tid}/messages").json()["items"]
        assert [m["content"] for m in items] == ["remember me"]
        with _client(server.url, server.config, "bob") as bob:
            assert bob.get(f"/api/threads/{tid}").status_code == 404


def test_memory_db_starts_empty_each_time() -> None:
    for _ in range(2):
        with running_reference() as server, _client(server.url, server.config) as me:
            assert me.get("/api/threads").json()["total"] == 0
            me.post("/api/threads", json={"title": "gone after stop"})


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_its_url_and_stops_cleanly_on_signals(sig: signal.Signals) -> None:
    code = (
        "import sys; from chatcontract.reference.server import serve_main; "
        "sys.exit(serve_main(port=0, faults='thread-idor'))"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            prefix = "chatcontract reference server listening on "
            assert line.startswith(prefix), line
            url = line.removeprefix(prefix)
            assert url.startswith("http://127.0.0.1:")
            assert "thread-idor" in proc.stdout.readline()
            assert httpx.get(f"{url}/health", timeout=TIMEOUT).status_code == 200
            proc.send_signal(sig)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_serve_main_lists_faults_and_rejects_unknown_ones() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert serve_main(list_faults=True, out=out) == 0
    listed = [line.split()[0] for line in out.getvalue().splitlines()]
    assert listed == list(FAULTS)
    assert serve_main(port=0, faults="thread-idor,nope", out=out, err=err) == 2
    message = err.getvalue().strip()
    assert message.startswith("chatcontract: unknown fault profile 'nope'")
    assert "thread-idor" in message
    assert "\n" not in message


def test_fault_names_are_validated_and_parsed() -> None:
    with pytest.raises(ConfigError, match="unknown fault profile 'bogus'; valid profiles: chat-"):
        validate_faults(["bogus"])
    with pytest.raises(ConfigError):
        ServerConfig(faults=frozenset({"bogus"}))
    assert parse_faults("thread-idor, server-error") == {"thread-idor", "server-error"}
    assert parse_faults("") == frozenset()
    assert parse_faults(None) == frozenset()


@pytest.mark.parametrize(
    "overrides",
    [{"port": 70000}, {"signing_key": "short"}, {"client_secret": ""}, {"ws_max_message_bytes": 0}],
)
def test_config_refuses_nonsense(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ServerConfig(**overrides)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown ServerConfig field"):
        ServerConfig().replace(colour="blue")


def test_async_helper_serves_on_the_callers_loop() -> None:
    import asyncio

    from chatcontract.reference import running_reference_async

    async def main() -> int:
        async with running_reference_async() as server, httpx.AsyncClient(timeout=TIMEOUT) as c:
            return (await c.get(f"{server.url}/health")).status_code

    assert asyncio.run(main()) == 200
