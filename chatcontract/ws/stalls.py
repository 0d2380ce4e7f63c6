"""What the first reader that waited in vain learned, shared by the endpoint's later contracts.

A stalled target makes every contract that reads it wait out a deadline: one
withheld terminal frame once cost a run 43 s. The first flow or probe that
times out records the stall here; a later contract that would wait for the
same kind of answer is *inconclusive: the endpoint stalled in <contract id>*
at once, instead of waiting again. So a stalled endpoint costs about one total
deadline, however many contracts read it.

Reading concurrently would bound the time too, but the contracts would then
compete for the declared connections-per-user and message-rate limits and
interleave their evidence; one connection at a time keeps both clean.

Two kinds of answer (pure: no I/O):

* ``answer``: nothing at all came back to a client frame within the
  first-frame deadline. Every later wait for an answer is pointless.
* ``run``: an answer began and stopped before its end (the idle or total
  deadline passed before the terminal event). Later contracts that follow a
  run to its end would stall the same way; single-frame answers (a ping's
  pong, an error frame) are still worth waiting for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Stall", "StallKind", "Stalls"]

StallKind = Literal["answer", "run"]


@dataclass(frozen=True, slots=True)
class Stall:
    kind: StallKind
    contract: str
    """The id of the contract whose wait timed out."""
    what: str
    """What did not arrive, e.g. ``no frame within 5 s after sending ping``."""

    @property
    def reason(self) -> str:
        return f"the endpoint stalled in {self.contract}: {self.what}"


@dataclass(slots=True)
class Stalls:
    """The first stall of each kind on one endpoint (later ones add nothing)."""

    answer: Stall | None = None
    run: Stall | None = None

    def record(self, kind: StallKind, contract: str, what: str) -> None:
        if kind == "answer" and self.answer is None:
            self.answer = Stall(kind, contract, what)
        elif kind == "run" and self.run is None:
            self.run = Stall(kind, contract, what)

    def blocks(self, *, run: bool = False) -> str | None:
        """Why a contract that waits for an answer (``run``: and follows a run to its
        end) should not wait at all; ``None`` when it should."""
        if self.answer is not None:
            return self.answer.reason
        if run and self.run is not None:
            return self.run.reason
        return None
