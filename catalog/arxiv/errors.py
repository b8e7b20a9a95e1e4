"""What can go wrong talking to arXiv, as `DigestError`s the CLI prints as one line."""

from __future__ import annotations

from catalog.errors import DigestError


class NetworkDown(DigestError):
    """The API could not be reached at all: no network, DNS failure, refused, timed out."""


class ArxivResponseError(DigestError):
    """The API answered, but not with something usable (HTTP error, malformed Atom)."""

    def __init__(self, message: str, *, status: int | None = None, body: bytes = b""):
        super().__init__(message)
        self.status = status
        self.body = body
