"""chatcontract: contract testing for AI-agent chat APIs from one OpenAPI 3.2 spec."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
