"""Peak memory of `chatcontract run` against an external target: first run vs warm run.

Target: a first run (empty cache folder) stays within 150 MB. The comparison is a
second run on the same cache folder, measured in the same invocation. The
reference server runs in its own process, so only the checker is measured.

    .venv/bin/python benchmarks/bench_memory.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TARGET_MB = 150


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _peak_mb(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Peak RSS of one child run, measured by a fresh wrapper process."""
    wrapper = (
        "import resource, subprocess, sys;"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode;"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *args], env=env, capture_output=True, text=True, check=True
    )
    kb, code = done.stdout.split()
    return int(kb) / 1024, int(code)


def main() -> None:
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "chatcontract"), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCONTRACT_")}
        env["CHATCONTRACT_CLIENT_SECRET"] = "reference-secret"
        with tempfile.TemporaryDirectory() as cache:
            args = [
                str(BIN / "chatcontract"),
                "run",
                "--base-url",
                f"http://127.0.0.1:{port}",
                "--cache-dir",
                cache,
                "-q",
            ]
            first, code1 = _peak_mb(args, env)
            warm, code2 = _peak_mb(args, env)
    finally:
        server.terminate()
        server.wait(10)
    print(f"first run: {first:6.1f} MB peak (exit {code1}); target {TARGET_MB} MB")
    print(f"warm run:  {warm:6.1f} MB peak (exit {code2})")
    print(f"ratio first/warm: {first / warm:.2f}")


if __name__ == "__main__":
    main()
