"""Streaming reader for one big JSON object whose bulk is a single array.

A Telegram Desktop export is ``{"name": …, "id": …, "messages": [ …100k objects… ]}``.
`json.load` would hold the whole text and every message at once; this reader keeps
one buffer of about a megabyte and hands out the top-level keys' values and the
array's elements one at a time, each decoded by the C scanner
(`json.JSONDecoder.raw_decode`), so memory stays flat however large the file.

A value cut by the end of the buffer fails to decode; the reader then reads more
and tries again (reading ever larger pieces, so a 10 MB message costs a few
retries, not thousands). A real syntax error is reported at once with its
character offset, without reading the rest of the file.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import IO, Any, Iterator

from scrapers.errors import ParseError

_WS = re.compile(r"[ \t\n\r]*")
_NUM_TAIL = re.compile(r"[0-9.eE+-]*")
_DECODER = json.JSONDecoder()
CHUNK = 1 << 20


class JsonStream:
    """Events from ``{"k": v, …, "<array_key>": [e0, e1, …], …}``: ("key", k, v) and ("item", array_key, e)."""

    def __init__(self, f: IO[bytes], *, source: str = "<json>", chunk: int = CHUNK):
        self.f = f
        self.source = source
        self.chunk = chunk
        self.utf8 = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.base = 0  # characters dropped from the front of buf so far
        self.bytes_read = 0
        self.eof = False
        self.start = 0  # where the last value decoded began in buf (see `last_text`)

    # -- buffer

    def _fill(self, size: int | None = None) -> bool:
        """Read more input; False at end of file."""
        if self.eof:
            return False
        data = self.f.read(size or self.chunk)
        self.bytes_read += len(data)
        try:
            text = self.utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise self.error(f"not UTF-8: {exc.reason}", pos=None,
                             where=f"byte {self.bytes_read - len(data) + exc.start}") from None
        if not data:
            self.eof = True
        self.base += self.pos
        self.buf = self.buf[self.pos:] + text
        self.pos = 0
        return bool(data) or bool(text)

    def error(self, message: str, *, pos: int | None = None, where: str | None = None) -> ParseError:
        if where is None:
            where = f"char {self.base + (self.pos if pos is None else pos)}"
        return ParseError(message, source=self.source, position=where)

    def _skip_ws(self) -> str:
        """Skip whitespace; the next character, or '' at end of input."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _expect(self, chars: str) -> str:
        ch = self._skip_ws()
        if not ch or ch not in chars:
            found = repr(ch) if ch else "end of input"
            raise self.error(f"invalid JSON: expected {' or '.join(map(repr, chars))}, found {found}")
        self.pos += 1
        return ch

    def _value(self) -> Any:
        self._skip_ws()
        grow = self.chunk
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                truncated = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.buf) - 6
                if truncated and not self.eof:
                    self._fill(grow)
                    grow *= 2
                    continue
                raise self.error(f"invalid JSON: {exc.msg}", pos=exc.pos) from None
            except RecursionError:
                raise self.error("invalid JSON: nested too deeply") from None
            # a value that touches the buffer's end, or a number followed only by number
            # characters ("0." of "0.5"), may continue in the next read
            if not self.eof and (end >= len(self.buf) or (
                    isinstance(value, (int, float)) and _NUM_TAIL.fullmatch(self.buf, end))):
                self._fill(grow)
                grow *= 2
                continue
            self.start, self.pos = self.pos, end
            return value

    def last_text(self) -> str:
        """The JSON text of the value handed out last, exactly as the file spells it.

        Valid until the next value is read (the buffer moves on then)."""
        return self.buf[self.start:self.pos]

    # -- structure

    def events(self, array_key: str) -> Iterator[tuple[str, str, Any]]:
        self._fill()
        self._expect("{")
        if self._skip_ws() == "}":
            self.pos += 1
            return
        while True:
            key = self._value()
            if not isinstance(key, str):
                raise self.error("invalid JSON: object key is not a string")
            self._expect(":")
            if key == array_key and self._skip_ws() == "[":
                self.pos += 1
                index = 0
                if self._skip_ws() == "]":
                    self.pos += 1
                else:
                    while True:
                        yield "item", key, self._value()
                        index += 1
                        if self._expect(",]") == "]":
                            break
            else:
                yield "key", key, self._value()
            if self._expect(",}") == "}":
                break
        if self._skip_ws():
            raise self.error("invalid JSON: data after the top-level object")
