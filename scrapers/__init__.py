"""Input formats -> plain `PostRecord`s.

Pure functions over text, bytes and HTML: no database, and no network except the
optional polite fetch helper for t.me/s pages.
"""

from scrapers.errors import ParseError
from scrapers.records import Link, PostRecord, SourceRecord

__all__ = ["Link", "ParseError", "PostRecord", "SourceRecord"]
