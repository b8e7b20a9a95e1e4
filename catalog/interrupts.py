"""SIGINT and SIGTERM during `digest sync`: stop at a point where the catalog is whole.

While a channel's pages are being fetched (network waits, nothing written yet that
would not roll back) a signal stops the sync at once: the channel's transaction rolls
back. While its posts are being written and committed, the signal waits until the
channel is stored, then stops the sync before the next one. Either way the caller
releases the sync lock and exits 128 + the signal number (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Interrupted(BaseException):
    """A sync stopped by a signal. BaseException: a channel's `except Exception` must not swallow it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.stored: list[str] = []  # channels committed before the signal
        self.rolled_back: str | None = None  # the channel under way, not stored
        self.not_reached: list[str] = []

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def line(self) -> str:
        parts = [f"interrupted by {signal.Signals(self.signum).name}",
                 "stored: " + (", ".join(self.stored) if self.stored else "no channel")]
        if self.rolled_back:
            parts.append(f"rolled back: {self.rolled_back}")
        if self.not_reached:
            parts.append("not reached: " + ", ".join(self.not_reached))
        return "; ".join(parts) + "; the sync lock is released — run `digest sync` again for the rest"


class SignalGuard:
    """Turns SIGINT/SIGTERM into `Interrupted`, at once inside `interruptible()`, else at `check()`."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.pending: int | None = None
        self._raise_now = False
        self._old: dict[int, object] = {}

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _handle(self, signum, _frame) -> None:
        self.pending = self.pending or signum
        if self._raise_now:
            self._raise_now = False
            raise Interrupted(signum)

    def check(self) -> None:
        if self.pending:
            raise Interrupted(self.pending)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        self.check()
        self._raise_now = True
        try:
            yield
        finally:
            self._raise_now = False
