"""REST contracts: the endpoint inventory and schemathesis-driven checks.

Importing this package registers nothing; the categories live in
:mod:`chatcontract.rest.inventory` (``inventory``, order 10) and
:mod:`chatcontract.rest.contracts` (``rest``, order 20), which register
themselves when imported.
"""

from __future__ import annotations

from chatcontract.rest.budget import BUDGET_KEY, Pacer, RunBudget, parse_rate_limit, run_budget
from chatcontract.rest.control import POSITIVE_CONTROL_KEY, PositiveControl, positive_control
from chatcontract.rest.fingerprint import Answer, Fingerprint, Presence, calibrate, judge

__all__ = [
    "BUDGET_KEY",
    "CATEGORY_MODULES",
    "POSITIVE_CONTROL_KEY",
    "Answer",
    "Fingerprint",
    "Pacer",
    "PositiveControl",
    "Presence",
    "RunBudget",
    "calibrate",
    "judge",
    "parse_rate_limit",
    "positive_control",
    "run_budget",
]

CATEGORY_MODULES: tuple[str, ...] = ("chatcontract.rest.inventory", "chatcontract.rest.contracts")
"""Modules whose import registers this package's categories, in run order."""
