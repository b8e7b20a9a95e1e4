"""One small made-up channel written out the three ways Telegram gives it to us.

`write_json_export`, `write_html_export` and `tme_page` render the same messages as a
Telegram Desktop JSON export, a Telegram Desktop HTML export and a t.me/s page, the
way those formats mark text, links, footnote anchors and forwards. Written for these
tests; nothing is copied from real exports.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

CHANNEL_ID = 1234567890
USERNAME = "papers_lab"
TITLE = "Papers Lab"


@dataclass
class Msg:
    id: int
    when: datetime
    parts: list  # str | ("a", shown, href) | ("link", url) | ("tag", name)
    views: int = 100
    forwarded_from: str | None = None
    forwarded_post: str | None = None  # "channel/id" as the t.me page links it


def _t(day: int, hour: int = 10) -> datetime:
    return datetime(2023, 7, day, hour, 0, tzinfo=timezone.utc)


MESSAGES = [
    Msg(11, _t(3), ["Retrieval heads explained [", ("a", "1", "https://arxiv.org/abs/2307.12037"), "] [",
                    ("a", "2", "https://huggingface.co/papers/2310.06825"), "], code ",
                    ("a", "6]", "https://github.com/lab/retrieval-heads"), " ", ("tag", "nlp")], views=1200),
    Msg(12, _t(4), ["Survey of adapters: ", ("link", "https://doi.org/10.48550/arXiv.2106.09685"),
                    " and the classic arXiv: 2005.14165 ", ("tag", "llm")], views=900),
    Msg(13, _t(5), ["Old but gold: hep-th/9901001 revisited, leaderboard at ",
                    ("link", "https://paperswithcode.com/paper/attention-is-all-you-need")], views=700),
    Msg(14, _t(6), ["Weekly notes on training tricks: warmup, dropout of attention heads, label smoothing."]),
    Msg(15, _t(7), ["Forwarded digest: sparse mixture of experts routing done right, with load balancing."],
        forwarded_from="Other Channel", forwarded_post="other_channel/77"),
]


def _plain(parts: list) -> str:
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
        elif p[0] == "a":
            out.append(p[1])
        elif p[0] == "link":
            out.append(p[1])
        else:
            out.append("#" + p[1])
    return "".join(out)


def json_message(m: Msg) -> dict:
    entities = []
    for p in m.parts:
        if isinstance(p, str):
            entities.append({"type": "plain", "text": p})
        elif p[0] == "a":
            entities.append({"type": "text_link", "text": p[1], "href": p[2]})
        elif p[0] == "link":
            entities.append({"type": "link", "text": p[1]})
        else:
            entities.append({"type": "hashtag", "text": "#" + p[1]})
    msg = {"id": m.id, "type": "message", "date": m.when.strftime("%Y-%m-%dT%H:%M:%S"),
           "date_unixtime": str(int(m.when.timestamp())), "from": TITLE, "from_id": f"channel{CHANNEL_ID}",
           "text": entities, "text_entities": entities}
    if m.forwarded_from:
        msg["forwarded_from"] = m.forwarded_from
    return msg


def write_json_export(folder: Path, messages: list[Msg] = MESSAGES, *, chat_id: int | None = CHANNEL_ID) -> Path:
    data = {"name": TITLE, "type": "public_channel"}
    if chat_id is not None:
        data["id"] = chat_id
    data["messages"] = [json_message(m) for m in messages]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "result.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _html_parts(parts: list, *, tme: bool = False) -> str:
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(html.escape(p))
        elif p[0] == "a":
            out.append(f'<a href="{html.escape(p[2])}">{html.escape(p[1])}</a>')
        elif p[0] == "link":
            out.append(f'<a href="{html.escape(p[1])}">{html.escape(p[1])}</a>')
        elif tme:
            out.append(f'<a href="?q=%23{p[1]}">#{p[1]}</a>')
        else:
            out.append(f'<a href="" onclick="return ShowHashtag(&quot;{p[1]}&quot;)">#{p[1]}</a>')
    return "".join(out)


def write_html_export(folder: Path, messages: list[Msg] = MESSAGES) -> Path:
    blocks = []
    for m in messages:
        stamp = m.when.strftime("%d.%m.%Y %H:%M:%S") + " UTC+00:00"
        body = f'<div class="text">{_html_parts(m.parts)}</div>'
        if m.forwarded_from:
            body = (f'<div class="forwarded body"><div class="from_name">{html.escape(m.forwarded_from)}'
                    f'<span class="date details" title="{stamp}"> {stamp}</span></div>{body}</div>')
        blocks.append(
            f'<div class="message default clearfix" id="message{m.id}"><div class="body">'
            f'<div class="pull_right date details" title="{stamp}">{m.when:%H:%M}</div>'
            f'<div class="from_name">{TITLE}</div>{body}</div></div>')
    page = ('<!DOCTYPE html><html><head><meta charset="utf-8"/><title>Exported Data</title></head><body>'
            '<div class="page_wrap"><div class="page_header"><div class="content"><div class="text bold">'
            f'{TITLE}</div></div></div><div class="page_body chat_page"><div class="history">'
            '<div class="message service" id="message-1"><div class="body details">3 July 2023</div></div>'
            + "".join(blocks) + "</div></div></div></body></html>")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "messages.html"
    path.write_text(page, encoding="utf-8")
    return path


def tme_page(messages: list[Msg] = MESSAGES, *, username: str = USERNAME, title: str = TITLE,
             before: int | None = None) -> str:
    widgets = []
    for m in messages:
        fwd = ""
        if m.forwarded_from:
            href = f' href="https://t.me/{m.forwarded_post}"' if m.forwarded_post else ""
            fwd = (f'<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
                   f'<a class="tgme_widget_message_forwarded_from_name"{href}><span>{html.escape(m.forwarded_from)}'
                   f'</span></a></div>')
        widgets.append(
            f'<div class="tgme_widget_message_wrap"><div class="tgme_widget_message" data-post="{username}/{m.id}">'
            f'<div class="tgme_widget_message_bubble">{fwd}'
            f'<div class="tgme_widget_message_text js-message_text">{_html_parts(m.parts, tme=True)}</div>'
            f'<div class="tgme_widget_message_footer"><div class="tgme_widget_message_info">'
            f'<span class="tgme_widget_message_views">{m.views}</span>'
            f'<a class="tgme_widget_message_date" href="https://t.me/{username}/{m.id}">'
            f'<time datetime="{m.when.isoformat()}">{m.when:%H:%M}</time></a></div></div></div></div></div>')
    more = f'<a class="tme_messages_more" data-before="{before}" href="/s/{username}?before={before}"></a>' \
        if before else ""
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
            f'<div class="tgme_channel_info"><div class="tgme_channel_info_header_title"><span>{html.escape(title)}'
            f'</span></div></div><section class="tgme_channel_history">{more}' + "".join(widgets)
            + "</section></body></html>")


def write_tme_page(folder: Path, messages: list[Msg] = MESSAGES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "papers_lab.html"
    path.write_text(tme_page(messages), encoding="utf-8")
    return path


def expected_links(m: Msg) -> set[str]:
    return {p[2] if p[0] == "a" else p[1] for p in m.parts if isinstance(p, tuple) and p[0] in ("a", "link")}


__all__ = ["MESSAGES", "Msg", "expected_links", "tme_page", "write_html_export", "write_json_export",
           "write_tme_page"]
