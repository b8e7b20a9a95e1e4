"""The one exception every parser raises for input it cannot read."""

from __future__ import annotations


class ParseError(ValueError):
    """Input that is not what the parser expects.

    Carries the file (or URL) and a position so the CLI can print one useful line:
    ``result.json: message #12 (byte 3312): 'text' is neither a string nor a list``.
    """

    def __init__(self, message: str, *, source: str | None = None, position: str | int | None = None):
        self.message = message
        self.source = source
        self.position = position
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source or "<input>"
        if self.position is not None:
            where = f"{where} ({self.position})"
        return f"{where}: {self.message}"
