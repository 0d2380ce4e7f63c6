"""REST contracts: the endpoint inventory and schemathesis-driven checks.

Importing this package registers nothing; the categories live in
:mod:`chatcontract.rest.inventory` (``inventory``, order 10) and
:mod:`chatcontract.rest.contracts` (``rest``, order 20), which register
themselves when imported.
"""

from __future__ import annotations

from chatcontract.rest.control import PositiveControl, positive_control
from chatcontract.rest.fingerprint import Answer, Fingerprint, Presence, calibrate, judge

__all__ = [
    "CATEGORY_MODULES",
    "Answer",
    "Fingerprint",
    "PositiveControl",
    "Presence",
    "calibrate",
    "judge",
    "positive_control",
]

CATEGORY_MODULES: tuple[str, ...] = ("chatcontract.rest.inventory", "chatcontract.rest.contracts")
"""Modules whose import registers this package's categories, in run order."""
