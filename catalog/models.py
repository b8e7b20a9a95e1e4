"""SQLAlchemy 2 models for the catalog (schema in DESIGN.md).

Times are stored as naive UTC (SQLite has no zones); `as_utc` makes them aware again.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def iso_utc(value: datetime | None) -> str | None:
    """A stored time as an ISO string with its UTC offset (None stays None)."""
    value = as_utc(value)
    return value.isoformat() if value else None


def to_naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Source(Base):
    __tablename__ = "source"
    __table_args__ = (UniqueConstraint("kind", "handle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Telegram's numeric channel id when an input named it: the same id is the same channel.
    channel_id: Mapped[int | None] = mapped_column(BigInteger, index=True)

    posts: Mapped[list[Post]] = relationship(back_populates="source")


class SourceAlias(Base):
    """Another route's key for a source: `export:<name>`, `channel<id>` or a username merged into it."""

    __tablename__ = "source_alias"
    __table_args__ = (UniqueConstraint("kind", "handle"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    handle: Mapped[str] = mapped_column(String(255))
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"), index=True)


class Follow(Base):
    """A public channel `digest sync` fetches: its page URL and how the last sync went."""

    __tablename__ = "follow"
    # The same handle on two hosts (t.me and a mirror) is two channels (catalog.follow_policy).
    __table_args__ = (UniqueConstraint("handle", "host", name="uq_follow_handle_host"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255), default="t.me", server_default="t.me")
    url: Mapped[str] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_synced_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_status: Mapped[str | None] = mapped_column(String(16))  # ok | failed
    last_error: Mapped[str | None] = mapped_column(Text)


class Post(Base):
    __tablename__ = "post"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_post_published", "published_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("source.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None] = mapped_column(DateTime)
    date_precision: Mapped[str] = mapped_column(String(8), default="second")
    text: Mapped[str] = mapped_column(Text, default="")
    raw: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(8))
    views: Mapped[int | None] = mapped_column(Integer)
    forwarded_from: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    edited_at: Mapped[datetime | None] = mapped_column(DateTime)
    ingested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Hash of the text's letters and digits (catalog.source_identity.text_fingerprint); NULL for short texts.
    fingerprint: Mapped[str | None] = mapped_column(String(40), index=True)
    # The original when this post is a forward or repost of one in another source (no FK:
    # added by a migration, and cleared by hand when the original goes).
    copy_of_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Digest of the raw message (and analysis) this row was last written from
    # (`scrapers.digests`); a re-ingest skips the messages whose digest matches. NULL: none known.
    raw_digest: Mapped[str | None] = mapped_column(String(32))

    source: Mapped[Source] = relationship(back_populates="posts")
    tags: Mapped[list[PostTag]] = relationship(back_populates="post", cascade="all, delete-orphan")
    papers: Mapped[list[PostPaper]] = relationship(back_populates="post", cascade="all, delete-orphan")
    links: Mapped[list[Link]] = relationship(back_populates="post", cascade="all, delete-orphan",
                                             order_by="Link.position")


class Tag(Base):
    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class PostTag(Base):
    __tablename__ = "post_tag"

    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True)
    origin: Mapped[str] = mapped_column(String(32), default="hashtag")  # hashtag | arxiv-category | manual

    post: Mapped[Post] = relationship(back_populates="tags")
    tag: Mapped[Tag] = relationship()


class PaperStatus(StrEnum):
    """Where a paper's arXiv metadata stands; the value is what the `paper.status` column holds."""

    PENDING = "pending"      # never asked (or not yet answered)
    OK = "ok"                # metadata fetched
    WITHDRAWN = "withdrawn"  # fetched, and the authors withdrew it (metadata kept)
    NOT_FOUND = "not_found"  # arXiv does not know the id
    ERROR = "error"          # arXiv rejected the id as malformed


class Paper(Base):
    __tablename__ = "paper"

    id: Mapped[int] = mapped_column(primary_key=True)
    arxiv_id: Mapped[str] = mapped_column(String(64), unique=True)
    version: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)
    abstract: Mapped[str | None] = mapped_column(Text)
    primary_category: Mapped[str | None] = mapped_column(String(64))
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    published: Mapped[datetime | None] = mapped_column(DateTime)
    updated: Mapped[datetime | None] = mapped_column(DateTime)
    pdf_url: Mapped[str | None] = mapped_column(Text)
    doi: Mapped[str | None] = mapped_column(Text)
    journal_ref: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PaperStatus.PENDING.value)  # a PaperStatus value
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime)

    posts: Mapped[list[PostPaper]] = relationship(back_populates="paper", cascade="all, delete-orphan")
    reproduction: Mapped[Reproduction | None] = relationship(back_populates="paper", uselist=False)


class PaperTag(Base):
    """Tags of a paper (its arXiv categories); posts that discuss it inherit them."""

    __tablename__ = "paper_tag"

    paper_id: Mapped[int] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True)
    origin: Mapped[str] = mapped_column(String(32), default="arxiv-category")

    tag: Mapped[Tag] = relationship()


class PostPaper(Base):
    __tablename__ = "post_paper"

    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), primary_key=True)
    paper_id: Mapped[int] = mapped_column(ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True, index=True)

    post: Mapped[Post] = relationship(back_populates="papers")
    paper: Mapped[Paper] = relationship(back_populates="posts")


class Link(Base):
    __tablename__ = "link"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("post.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), default="other")

    post: Mapped[Post] = relationship(back_populates="links")


class Reproduction(Base):
    __tablename__ = "reproduction"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    paper_id: Mapped[int | None] = mapped_column(ForeignKey("paper.id", ondelete="SET NULL"))
    arxiv_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    measures: Mapped[str] = mapped_column(Text, default="")
    paper_claims: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    presets: Mapped[list[str]] = mapped_column(JSON, default=list)

    paper: Mapped[Paper | None] = relationship(back_populates="reproduction")
    runs: Mapped[list[Run]] = relationship(back_populates="reproduction", cascade="all, delete-orphan",
                                           order_by="Run.started_at")


class Run(Base):
    __tablename__ = "run"
    __table_args__ = (UniqueConstraint("reproduction_id", "run_dir"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reproduction_id: Mapped[int] = mapped_column(ForeignKey("reproduction.id", ondelete="CASCADE"))
    preset: Mapped[str] = mapped_column(String(16))
    device: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    duration_s: Mapped[float | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artefacts: Mapped[list[str]] = mapped_column(JSON, default=list)
    run_dir: Mapped[str] = mapped_column(Text, default="")

    reproduction: Mapped[Reproduction] = relationship(back_populates="runs")


class Meta(Base):
    """Key/value facts about the database itself (schema version)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Related(Base):
    """Precomputed similar items: for each post or paper, its nearest posts and papers.

    Kept up to date by `catalog.related.update_related` (after ingest/sync, before a site
    build: incrementally for a few new items, else rebuilt as a whole) and read by
    `digest related` and the pages; never computed per request.
    """

    __tablename__ = "related"

    item_kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # post | paper
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    other_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1 = most similar
    other_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column()
