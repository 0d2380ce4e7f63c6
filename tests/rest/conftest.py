"""Reference servers (the shipped fixtures) for the REST tests."""

from __future__ import annotations

from chatcontract.reference.testing import reference_factory, reference_server

__all__ = ["reference_factory", "reference_server"]
