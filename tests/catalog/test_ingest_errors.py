"""Ingest tells a user's mistake from a bug: a bad --format is one line, a parser's KeyError is not."""

from __future__ import annotations

import os
import queue

import pytest

from catalog.demo import sample_corpus
from catalog.errors import DigestError
from catalog.ingest import ingest_file
from catalog.ingest_parser import _parse_in_child
from scrapers import formats, telegram_json


def test_unknown_format_name_is_a_digest_error(engine):
    with pytest.raises(DigestError, match=r"^unknown format 'nope' \(known: telegram-json"):
        ingest_file(engine, sample_corpus()[0], format="nope")
    with pytest.raises(formats.UnknownFormat):
        formats.by_name("nope")


def test_a_keyerror_inside_a_parser_is_not_reported_as_an_unknown_format(engine, monkeypatch):
    def buggy(path, known=None):  # the signature of a reader that skips unchanged messages
        raise KeyError("from_id")  # as a parser bug would: a field it assumed every message has

    monkeypatch.setattr(telegram_json, "parse_file", buggy)
    for fmt in (None, "telegram-json"):
        with pytest.raises(KeyError) as err:
            ingest_file(engine, sample_corpus()[0], format=fmt)
        assert type(err.value) is KeyError and err.value.args == ("from_id",)


class _Queue:
    """Stands in for the parser process's queue: fails the first puts as told, records the rest."""

    def __init__(self, failures: list[Exception]):
        self.failures = failures
        self.items: list = []

    def put(self, item, timeout=None):
        if self.failures:
            raise self.failures.pop(0)
        self.items.append(item)


def test_child_parser_waits_out_a_full_queue():
    q = _Queue([queue.Full(), queue.Full()])
    _parse_in_child(str(sample_corpus()[0]), None, q, None, False, os.getppid())
    kinds = [kind for kind, _ in q.items]
    assert kinds[-1] == "done" and "batch" in kinds and "error" not in kinds


def test_child_parser_does_not_swallow_other_queue_errors():
    # Before, any exception from put() was taken for queue.Full and retried forever.
    q = _Queue([ValueError("Queue is closed")] * 2)
    with pytest.raises(ValueError, match="Queue is closed"):
        _parse_in_child(str(sample_corpus()[0]), None, q, None, False, os.getppid())
