"""Plain schemathesis, default checks, finds nothing wrong with the clean server."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import as_file, files
from pathlib import Path

from chatcontract.reference import mint_token

from .conftest import Api

ST = Path(sys.executable).with_name("st")


def test_schemathesis_finds_no_failures_on_the_clean_server(api: Api, tmp_path: Path) -> None:
    """/ws is no HTTP operation; both SSE operations are included."""
    token = mint_token("fuzzer", api.server.config)
    with as_file(files("chatcontract") / "data" / "openapi.yaml") as spec:
        result = subprocess.run(
            [
                str(ST),
                "run",
                str(spec),
                "--url",
                api.server.url,
                "-H",
                f"Authorization: Bearer {token}",
                "--exclude-path",
                "/ws",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                "10",
                "--seed",
                "20250907",
                "--request-timeout",
                "10",
                "--no-color",
            ],
            cwd=tmp_path,  # schemathesis writes a cache directory into its cwd
            capture_output=True,
            text=True,
            timeout=50,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Tested: 20" in result.stdout
