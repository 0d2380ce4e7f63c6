"""Running the reference server: the CLI entry point and in-process helpers.

The in-process helpers bind the listening socket themselves (port 0), so the
real port is known before uvicorn starts and nothing races for a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import uvicorn

from chatcontract.errors import ChatContractError, ConfigError
from chatcontract.reference.app import create_app
from chatcontract.reference.config import DEFAULT_PORT, ServerConfig
from chatcontract.reference.contract import load_contract
from chatcontract.reference.faults import FAULTS, parse_faults

__all__ = [
    "RunningReference",
    "run_server",
    "running_reference",
    "running_reference_async",
    "serve_main",
]

_STARTUP_DEADLINE = 10.0
_GRACEFUL_SECONDS = 2
# Above the spec's message limit, so `ws-drops-oversize` can see (and drop)
# oversize messages; the clean server gets uvicorn's own 1009 at the limit.
_FAULTY_WS_MAX_SIZE = 1024 * 1024
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class RunningReference:
    """A reference server that is accepting connections."""

    url: str
    ws_url: str
    config: ServerConfig


class _ClientFaultFilter(logging.Filter):
    """Drop uvicorn's ERROR + traceback for invalid UTF-8 from a client.

    That is the client's fault, already answered with close 1007 on the wire;
    a traceback in the server log would read as a server bug.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Invalid UTF-8 sequence received from client")


_CLIENT_FAULT_FILTER = _ClientFaultFilter()


def _uvicorn_config(config: ServerConfig, *, log_level: str) -> uvicorn.Config:
    logging.getLogger("uvicorn.error").addFilter(_CLIENT_FAULT_FILTER)
    limit = config.ws_max_message_bytes or load_contract().websocket.max_message_bytes
    if "ws-drops-oversize" in config.active_faults:
        limit = max(limit * 4, _FAULTY_WS_MAX_SIZE)
    return uvicorn.Config(
        create_app(config),
        host=config.host,
        port=config.port,
        ws_max_size=limit,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=_GRACEFUL_SECONDS,
    )


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _base_url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _in_process_config(config: ServerConfig | None, overrides: dict[str, Any]) -> ServerConfig:
    base = config or ServerConfig()
    return base.replace(**{"host": "127.0.0.1", "port": 0, **overrides})


@contextlib.contextmanager
def running_reference(
    config: ServerConfig | None = None, **overrides: Any
) -> Iterator[RunningReference]:
    """Run the server in a background thread on 127.0.0.1, port 0, until the block ends.

    ``overrides`` are ServerConfig fields, e.g. ``faults=frozenset({"thread-idor"})``.
    """
    config = _in_process_config(config, overrides)
    server = uvicorn.Server(_uvicorn_config(config, log_level="warning"))
    sock = _bind(config.host, config.port)
    url = _base_url(sock, config.host)
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the starting thread below
            failure.append(exc)

    thread = threading.Thread(target=serve, name="chatcontract-reference", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _STARTUP_DEADLINE
        while not server.started:
            if failure or not thread.is_alive():
                raise ChatContractError(f"reference server failed to start: {failure[:1]}")
            if time.monotonic() > deadline:
                raise ChatContractError("reference server did not start within 10 s")
            time.sleep(0.005)
        yield RunningReference(url=url, ws_url=url.replace("http", "ws", 1) + "/ws", config=config)
    finally:
        server.should_exit = True
        thread.join(_GRACEFUL_SECONDS + 3)
        if thread.is_alive():
            server.force_exit = True
            thread.join(3)
        sock.close()


@contextlib.asynccontextmanager
async def running_reference_async(
    config: ServerConfig | None = None, **overrides: Any
) -> AsyncIterator[RunningReference]:
    """Like running_reference, but serving on the caller's event loop."""
    config = _in_process_config(config, overrides)
    server = uvicorn.Server(_uvicorn_config(config, log_level="warning"))
    sock = _bind(config.host, config.port)
    url = _base_url(sock, config.host)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + _STARTUP_DEADLINE
        while not server.started:
            if task.done():
                raise ChatContractError(f"reference server failed to start: {task.exception()}")
            if time.monotonic() > deadline:
                raise ChatContractError("reference server did not start within 10 s")
            await asyncio.sleep(0.005)
        yield RunningReference(url=url, ws_url=url.replace("http", "ws", 1) + "/ws", config=config)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, _GRACEFUL_SECONDS + 3)
        sock.close()


@contextlib.contextmanager
def _quiet_after_shutdown() -> Iterator[None]:
    """Make SIGINT/SIGTERM end in a clean return rather than a re-raised signal.

    uvicorn shuts down gracefully on both, then re-raises the signal with the
    handler it found installed; with a no-op handler installed, the process
    exits 0 after a clean shutdown instead of dying by the signal.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_server(config: ServerConfig, *, out: TextIO | None = None) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then shut down gracefully."""
    out = out or sys.stdout
    server = uvicorn.Server(_uvicorn_config(config, log_level="warning"))
    sock = _bind(config.host, config.port)
    try:
        print(
            f"chatcontract reference server listening on {_base_url(sock, config.host)}", file=out
        )
        if config.faults:
            print(f"fault profiles: {', '.join(sorted(config.faults))}", file=out)
        out.flush()
        with _quiet_after_shutdown():
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()


def serve_main(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    db: str | None = None,
    faults: str | Iterable[str] = (),
    list_faults: bool = False,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """``chatcontract serve``: list the fault profiles or run the server; returns the exit code.

    ``db`` None is an in-memory database; ``faults`` is a comma-separated string
    or an iterable of names. Bad options (an unknown fault, a port in use, an
    unusable database) print one ``error:`` line and return 2.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if list_faults:
        width = max(len(name) for name in FAULTS)
        for name, description in FAULTS.items():
            print(f"{name.ljust(width)}  {description}", file=out)
        return 0
    try:
        config = ServerConfig(
            host=host, port=port, db=db or ":memory:", faults=parse_faults(faults)
        )
        run_server(config, out=out)
    except ConfigError as exc:
        print(f"chatcontract: {exc}", file=err)
        return 2
    except sqlite3.Error as exc:
        print(f"chatcontract: cannot use database {db}: {exc}", file=err)
        return 2
    except OSError as exc:
        print(f"chatcontract: cannot listen on {host}:{port}: {exc.strerror or exc}", file=err)
        return 2
    return 0
