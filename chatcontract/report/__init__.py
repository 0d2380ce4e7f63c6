"""Results and the reports made from them."""

from __future__ import annotations

from chatcontract.report.model import ContractResult, Finding, Outcome, TranscriptEntry

__all__ = ["ContractResult", "Finding", "Outcome", "TranscriptEntry"]
