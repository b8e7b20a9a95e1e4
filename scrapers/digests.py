"""Raw-message digests: what lets a re-ingest skip a message it has already analysed.

A digest covers the message's text exactly as the input spells it AND the code that
analyses a message into a record (every module of this package, read once per process):
an upgrade that changes how a message is read changes every digest, so the first
re-ingest after it analyses everything again, as it did before digests existed.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

from scrapers.records import SourceRecord

# The stored digests of one source, by external id: what a reader may skip (see `formats.read`).
KnownDigests = Callable[[SourceRecord], Mapping[str, str]]


@lru_cache(maxsize=1)
def analysis_key() -> bytes:
    """A hash of the scrapers' own source code: any change to the analysis changes it."""
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.digest()


def message_digest(raw_text: str) -> str:
    """32 hex characters for the raw JSON text of one message (under the current analysis)."""
    h = hashlib.blake2b(analysis_key(), digest_size=16)
    h.update(raw_text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()
