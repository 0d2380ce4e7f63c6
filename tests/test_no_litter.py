"""A run writes nothing into the working directory: hypothesis' files go to the cache folder.

Hypothesis writes its files (a constants cache, Unicode tables) the first time
a process generates data, so the runs below are fresh interpreters: in this
pytest process other property tests got there first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import configuration

from chatcontract.context import RunSettings
from chatcontract.transport import cache_folder, hypothesis_home

ROOT = Path(__file__).resolve().parents[1]

SCRIPTS = {
    # schemathesis' engine (every phase) generating bodies for a server that answers 200.
    "rest": """
        from chatcontract.budget import RunBudget
        from chatcontract.rest.engine import EnginePlan, run_engine
        from chatcontract.spec import load_spec
        from tests.rest import hostile_http as zoo

        spec = load_spec(ROOT / "openapi.yaml")
        with zoo.serving(zoo.routes({}, default=zoo.ok())) as server:
            recording = run_engine(
                EnginePlan(
                    document=spec.document,
                    base_url=server.url,
                    operation_ids=("createThread",),
                    protected={},
                    token=None,
                    budget=RunBudget(200),
                    max_examples=3,
                    request_timeout=2.0,
                    cache_dir=CACHE,
                )
            )
        assert recording.tested == {"POST /api/threads"}, recording
    """,
    # The WebSocket frame fuzzer against a server it can break.
    "websocket": """
        import asyncio

        from chatcontract.reference.config import ServerConfig
        from chatcontract.ws.fuzz import fuzz_contract
        from chatcontract.ws.handshake import positive_control
        from tests.ws import hostile
        from tests.ws.helpers import MintedCredentials, make_ctx, target_of

        async def main() -> str:
            async with hostile.hostile_server(hostile.fuzz_victim("message_id")) as url:
                credentials = MintedCredentials(ServerConfig())
                ctx = make_ctx(
                    url, credentials, target_is_reference=False, max_examples=5, cache_dir=CACHE
                )
                target = target_of(ctx)
                _, access = await positive_control(target)
                return (await fuzz_contract(target, access)).outcome.value

        assert asyncio.run(main()) in ("passed", "failed")
    """,
}


@pytest.mark.parametrize("part", sorted(SCRIPTS))
def test_a_run_leaves_the_working_directory_as_it_was(part: str, tmp_path: Path) -> None:
    cwd, cache, home = tmp_path / "cwd", tmp_path / "cache", tmp_path / "home"
    for folder in (cwd, home):
        folder.mkdir()
    (cwd / "notes.txt").write_text("the user's own file\n")
    prelude = f"import sys\nfrom pathlib import Path\nROOT = Path({str(ROOT)!r})\n"
    prelude += f"sys.path.insert(0, str(ROOT))\nCACHE = Path({str(cache)!r})\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYPOTHESIS", "XDG_"))}
    env["HOME"] = str(home)
    completed = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(SCRIPTS[part])],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert sorted(p.name for p in cwd.iterdir()) == ["notes.txt"]
    assert (cache / "hypothesis").is_dir()  # what hypothesis wrote went here
    assert not list(home.rglob("*"))


def test_the_cache_folder_is_the_setting_then_xdg_then_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert cache_folder(tmp_path / "mine") == tmp_path / "mine"
    assert RunSettings().cache_dir is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder(None) == tmp_path / "xdg" / "chatcontract"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec ignores these
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder(None) == tmp_path / "home" / ".cache" / "chatcontract"


def test_hypothesis_home_lasts_for_the_block_and_overlapping_blocks(tmp_path: Path) -> None:
    before = configuration.storage_directory("x", intent_to_write=False).path
    with hypothesis_home(tmp_path / "a") as home:
        assert home == tmp_path / "a" / "hypothesis"
        assert configuration.storage_directory("x", intent_to_write=False).path == home / "x"
        with hypothesis_home(tmp_path / "a"):
            pass
        # Still ours: another block ending (the fuzzer's thread) does not restore early.
        assert configuration.storage_directory("x", intent_to_write=False).path == home / "x"
    assert configuration.storage_directory("x", intent_to_write=False).path == before


def test_the_seeded_codec_table_is_the_one_hypothesis_would_compute(tmp_path: Path) -> None:
    """We write hypothesis' utf-8 table in O(runs) memory (its own loop peaks ~200 MB);
    both must be equal, checked in a subprocess so the big one never lives here."""
    script = """
import gzip, json, sys
from pathlib import Path
from hypothesis import configuration
from hypothesis.internal import charmap
from chatcontract.transport import hypothesis_home

ours = Path(sys.argv[1])
with hypothesis_home(ours) as home:
    pass
seeded = json.loads(gzip.open(next(home.glob("unicode_data/*/codec-v2-utf-8.json.gz"))).read())
configuration.set_hypothesis_home_dir(Path(sys.argv[2]))
theirs, lossy = charmap.intervals_from_codec("utf-8")
assert seeded == [[list(i) for i in theirs.intervals], [list(i) for i in lossy.intervals]], seeded
print("same")
"""
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "ours"), str(tmp_path / "theirs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "same"
