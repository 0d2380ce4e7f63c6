"""The reference chat server: openapi.yaml implemented, plus fault profiles.

It is the default target of ``chatcontract run`` and the proof that every
checker catches what it claims: each fault profile breaks one documented
part of the contract (see :data:`FAULTS`).
"""

from __future__ import annotations

from chatcontract.reference.app import create_app
from chatcontract.reference.config import ServerConfig
from chatcontract.reference.faults import FAULTS, parse_faults, validate_faults
from chatcontract.reference.server import (
    RunningReference,
    run_server,
    running_reference,
    running_reference_async,
    serve_main,
)
from chatcontract.reference.tokens import mint_token

__all__ = [
    "FAULTS",
    "RunningReference",
    "ServerConfig",
    "create_app",
    "mint_token",
    "parse_faults",
    "run_server",
    "running_reference",
    "running_reference_async",
    "serve_main",
    "validate_faults",
]
