"""chatcontract: contract testing for AI-agent chat APIs from one OpenAPI 3.2 spec.

The everyday API::

    from chatcontract import RunContext, credentials_from_env, load_spec, run_contracts

    spec = load_spec("openapi.yaml")
    ctx = RunContext(spec, base_url, credentials_from_env(spec, base_url))
    results = asyncio.run(run_contracts(ctx))
"""

from __future__ import annotations

from chatcontract.auth import (
    EnvTokens,
    OAuth2ClientCredentials,
    StaticToken,
    credentials_from_env,
)
from chatcontract.context import Credentials, RunContext, RunSettings
from chatcontract.errors import (
    ChatContractError,
    ConfigError,
    ContractViolation,
    SpecError,
    TargetUnreachable,
)
from chatcontract.redact import Redactor
from chatcontract.report.model import ContractResult, Finding, Outcome, TranscriptEntry
from chatcontract.runner import categories, category, run_contracts
from chatcontract.spec import Spec, bundled_spec_path, lint, load_spec

__version__ = "0.1.0"

__all__ = [
    "ChatContractError",
    "ConfigError",
    "ContractResult",
    "ContractViolation",
    "Credentials",
    "EnvTokens",
    "Finding",
    "OAuth2ClientCredentials",
    "Outcome",
    "Redactor",
    "RunContext",
    "RunSettings",
    "Spec",
    "SpecError",
    "StaticToken",
    "TargetUnreachable",
    "TranscriptEntry",
    "__version__",
    "bundled_spec_path",
    "categories",
    "category",
    "credentials_from_env",
    "lint",
    "load_spec",
    "run_contracts",
]
