"""The two error families.

``ChatContractError`` is for our side of the table: a bad spec, bad usage, an
unreachable target, a bug. ``ContractViolation`` is the server breaking its
contract; it subclasses ``AssertionError`` so pytest reports a failure, not an
error. Foreign exceptions are translated only at the I/O edge.
"""

from __future__ import annotations

__all__ = [
    "ChatContractError",
    "ConfigError",
    "ContractViolation",
    "SpecError",
    "TargetUnreachable",
]


class ChatContractError(Exception):
    """Base class for errors that are not the server's fault."""


class SpecError(ChatContractError):
    """The spec cannot be loaded or is invalid.

    ``where`` is the file and ``pointer`` the JSON pointer (or ``line N, column M``
    for syntax errors) of the first problem; ``problems`` holds every problem found.
    """

    def __init__(
        self,
        where: str,
        pointer: str,
        message: str,
        problems: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.where = where
        self.pointer = pointer
        self.message = message
        self.problems = problems or ((pointer, message),)
        super().__init__(f"{where}: {pointer}: {message}")

    def lines(self) -> list[str]:
        """One ``FILE: POINTER: MESSAGE`` line per problem."""
        return [f"{self.where}: {ptr}: {msg}" for ptr, msg in self.problems]


class ConfigError(ChatContractError):
    """Bad usage: an option, a credential setting, a fault profile name."""


class TargetUnreachable(ChatContractError):
    """The target could not be reached at all (refused, DNS, timeout on connect)."""


class ContractViolation(AssertionError):
    """The server broke its contract. Raised from pytest-facing helpers."""
