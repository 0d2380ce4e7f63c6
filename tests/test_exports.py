"""The public API: every public module declares ``__all__`` and it resolves."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import chatcontract

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(chatcontract.__path__, "chatcontract.")
    if not m.name.rsplit(".", 1)[-1].startswith("_") and m.name != "chatcontract.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_public_module_declares_all_and_every_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


def test_top_level_reexports_are_importable() -> None:
    for name in chatcontract.__all__:
        assert hasattr(chatcontract, name)
