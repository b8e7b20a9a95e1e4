"""The SQLite catalog: models, ingest, search, arXiv sync, site generation and the CLI."""

from catalog.errors import DigestError

__all__ = ["DigestError"]
