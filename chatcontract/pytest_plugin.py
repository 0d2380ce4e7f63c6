"""pytest plugin entry point (fixtures are added by later work)."""

from __future__ import annotations

__all__: list[str] = []
