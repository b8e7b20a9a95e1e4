"""Selection on validation only: the test split stays sealed until the final evaluation.

An experiment wraps its test split with ``ctx.seal(data, "PTB test")`` when it loads it.
While the run is in its selection phase (choosing lambdas, steps, a preset's knobs) only the
training and validation splits can be read; ``ctx.select(...)`` records each choice with the
split it was made on. ``ctx.begin_final_evaluation()`` ends the selection phase for good:
from then on the sealed split opens and no further choice may be recorded, so no number
measured on the test split can feed back into the recipe. Both go into run.json
(``notes.selection`` and ``notes.final_evaluation``).
"""

from __future__ import annotations

from typing import Any, Generic, Sequence, TypeVar

from reproductions.errors import RunnerError

T = TypeVar("T")


class TestSplitSealed(RunnerError):
    """The test split was read (or a choice recorded after it was) outside the final evaluation."""

    __test__ = False  # not a pytest class despite the name


class Phase:
    """Where a run stands: selecting (test sealed) or in its final evaluation (test open)."""

    def __init__(self) -> None:
        self.final = False
        self.selections: list[dict[str, Any]] = []

    def select(self, what: str, *, split: str, chosen: Any, grid: Sequence[Any] = (),
               scores: Sequence[Any] = (), rule: str = "") -> dict[str, Any]:
        if self.final:
            raise TestSplitSealed(f"cannot choose {what} after the final evaluation has opened the test split")
        entry = {"what": what, "split": split, "grid": list(grid), "scores": list(scores), "chosen": chosen,
                 "rule": rule}
        self.selections.append(entry)
        return entry

    def begin_final_evaluation(self) -> None:
        self.final = True


class Sealed(Generic[T]):
    """A test split that refuses to be read before the final evaluation."""

    def __init__(self, data: T, phase: Phase, name: str):
        self._data = data
        self._phase = phase
        self.name = name

    def open(self) -> T:
        if not self._phase.final:
            raise TestSplitSealed(f"{self.name} is sealed until the final evaluation "
                                  "(ctx.begin_final_evaluation()); choose on the validation split")
        return self._data
