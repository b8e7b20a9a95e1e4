"""What an ingest did: files, sources, posts new/updated/unchanged, tags, papers, merges, copies."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class IngestStats:
    files: int = 0
    sources: int = 0
    posts_new: int = 0
    posts_updated: int = 0
    posts_unchanged: int = 0
    tags: int = 0
    arxiv_ids: int = 0
    sources_merged: int = 0  # automatic merges of routes of one channel (catalog.source_merge)
    copies: int = 0  # posts tied to an original in another source
    merges: list = field(default_factory=list)
    _source_keys: set = field(default_factory=set, repr=False)  # ids of the sources written to
    _tag_names: set = field(default_factory=set, repr=False)
    _arxiv: set = field(default_factory=set, repr=False)

    @property
    def posts(self) -> int:
        return self.posts_new + self.posts_updated + self.posts_unchanged

    def merge(self, other: IngestStats) -> None:
        self.files += other.files
        self.posts_new += other.posts_new
        self.posts_updated += other.posts_updated
        self.posts_unchanged += other.posts_unchanged
        self.sources_merged += other.sources_merged
        self.copies += other.copies
        self.merges += other.merges
        self._source_keys |= other._source_keys
        self._follow_merges()
        self._tag_names |= other._tag_names
        self._arxiv |= other._arxiv
        self._finish()

    def _follow_merges(self) -> None:
        """A source merged away counts as the one it was merged into."""
        for m in self.merges:
            if m["other"]["id"] in self._source_keys:
                self._source_keys = (self._source_keys - {m["other"]["id"]}) | {m["keep"]["id"]}

    def _finish(self) -> None:
        self.sources, self.tags, self.arxiv_ids = len(self._source_keys), len(self._tag_names), len(self._arxiv)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")} | {"posts": self.posts}
