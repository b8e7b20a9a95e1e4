"""The HTML readers on real content.

../shared has no saved Telegram HTML export, t.me/s page or blog HTML page (only the
real JSON export and text dumps), so these tests carry real content into each HTML
shape: every message of the real Telegram Desktop JSON export is written out as the
HTML export's `div.message` blocks and as t.me/s widgets, and every entry of the real
kexue.fm listing dump (seed 003) as the blog's HTML listing. Each HTML reader must then
give the same posts as the reader of the real file: ids, dates, text, hashtags, links,
forwards. The markup is ours (from FORMATS.md); the words, links, entities, scripts,
emoji and dates are the samples'.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from support.helpers import seed, shared_path
from scrapers import blog_listing, formats, telegram_html, telegram_json, tme_preview

EXPORT = ("fixtures", "telegram", "uponthepathofsalaf_result.json")
_EMOJI = re.compile("([\U0001F000-\U0001FAFF\u2600-\u27BF])")


def squash(text: str) -> str:
    """Text with runs of whitespace made one space: block markup may add a newline, never words."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def export() -> dict:
    return json.loads(shared_path(*EXPORT).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def json_posts() -> dict[str, object]:
    posts = {p.external_id: p for p in telegram_json.parse_file(shared_path(*EXPORT))}
    assert len(posts) > 150  # 208 posts in the file; a few are media-less and empty
    return posts


def _spans(message: dict) -> list[dict]:
    entities = message.get("text_entities")
    if isinstance(entities, list) and entities:
        return entities
    text = message.get("text", "")
    if isinstance(text, str):
        return [{"type": "plain", "text": text}]
    return [{"type": "plain", "text": t} if isinstance(t, str) else t for t in text]


def _inline(text: str, *, emoji: bool = False) -> str:
    out = html.escape(text, quote=False)
    if emoji:  # t.me wraps each emoji: <i class="emoji"><b>📚</b></i>
        out = _EMOJI.sub(r'<i class="emoji" style="background-image:url(x.png)"><b>\1</b></i>', out)
    return out.replace("\n", "<br>")


def _span_html(span: dict, *, tme: bool) -> str:
    kind, text = span.get("type", "plain"), span.get("text", "")
    inner = _inline(text, emoji=tme)
    if kind == "text_link":
        return f'<a href="{html.escape(span["href"])}">{inner}</a>'
    if kind == "link":
        href = text if re.match(r"https?://", text) else "http://" + text
        return f'<a href="{html.escape(href)}">{inner}</a>'
    if kind == "hashtag":
        tag = text.lstrip("#")
        return (f'<a href="?q=%23{html.escape(tag)}">{inner}</a>' if tme else
                f'<a href="" onclick="return ShowHashtag(&quot;{html.escape(tag)}&quot;)">{inner}</a>')
    if kind == "mention":
        return f'<a href="" onclick="return ShowMentionName()">{inner}</a>'
    tag = {"bold": "strong", "italic": "em", "underline": "u", "code": "code", "pre": "pre",
           "blockquote": "blockquote", "spoiler": "span"}.get(kind)
    return f"<{tag}>{inner}</{tag}>" if tag else inner


def _body_html(message: dict, *, tme: bool) -> str:
    return "".join(_span_html(s, tme=tme) for s in _spans(message))


def _utc(message: dict) -> datetime:
    return datetime.fromtimestamp(int(message["date_unixtime"]), tz=timezone.utc)


def _has_media(message: dict) -> bool:
    return bool(message.get("photo") or message.get("file"))


# ---------------------------------------------------------------- Telegram Desktop HTML export

def _desktop_block(message: dict) -> str:
    if message.get("type") != "message":
        return (f'<div class="message service" id="message-{message["id"]}">'
                f'<div class="body details">{html.escape(message.get("action", ""))}</div></div>')
    local = datetime.fromisoformat(message["date"])
    offset = local - _utc(message).replace(tzinfo=None)
    minutes = int(offset / timedelta(minutes=1))
    sign = "+" if minutes >= 0 else "-"
    stamp = f"{local:%d.%m.%Y %H:%M:%S} UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    media = '<div class="media_wrap clearfix"><div class="media">file</div></div>' if _has_media(message) else ""
    text = f'<div class="text">{_body_html(message, tme=False)}</div>'
    if message.get("forwarded_from"):
        content = (f'<div class="forwarded body"><div class="from_name">{html.escape(message["forwarded_from"])}'
                   f'<span class="date details" title="{stamp}"> {local:%d.%m.%Y}</span></div>{media}{text}</div>')
    else:
        content = f'<div class="from_name">{html.escape(message.get("from") or "")}</div>{media}{text}'
    return (f'<div class="message default clearfix" id="message{message["id"]}"><div class="body">'
            f'<div class="pull_right date details" title="{stamp}">{local:%H:%M}</div>{content}</div></div>')


def desktop_html(export: dict) -> str:
    blocks = "\n".join(_desktop_block(m) for m in export["messages"])
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"/><title>Exported Data</title></head><body>'
            '<div class="page_wrap"><div class="page_header"><div class="content"><div class="text bold">'
            f'{html.escape(export["name"])}</div></div></div><div class="page_body chat_page">'
            f'<div class="history">\n{blocks}\n</div></div></div></body></html>')


def _same_post(got, want) -> None:
    assert squash(got.text) == squash(want.text), want.external_id
    assert got.published_at == want.published_at, want.external_id
    assert got.hashtags == want.hashtags, want.external_id
    assert got.arxiv_ids == want.arxiv_ids, want.external_id
    assert {l.url for l in got.links} == {l.url for l in want.links}, want.external_id
    assert got.forwarded_from == want.forwarded_from, want.external_id


def test_telegram_html_export_gives_the_posts_of_the_real_json_export(tmp_path, export, json_posts):
    page = tmp_path / "messages.html"
    page.write_text(desktop_html(export), encoding="utf-8")
    assert formats.detect(page) is telegram_html
    got = {p.external_id: p for p in telegram_html.parse_file(page)}
    assert set(got) == set(json_posts)  # service messages and empty ones dropped alike
    for msg_id, want in json_posts.items():
        _same_post(got[msg_id], want)
    assert {p.source.title for p in got.values()} == {export["name"]}
    # the sample's own features made it through: Arabic script, forwards, hidden links, hashtags
    assert any(re.search("[\u0600-\u06FF]", p.text) for p in got.values())
    assert sum(p.forwarded_from is not None for p in got.values()) >= 15
    assert {"patience", "scholarly_anecdotes"} <= {t for p in got.values() for t in p.hashtags}
    assert sum(len(p.links) for p in got.values()) >= 100


# ---------------------------------------------------------------- t.me/s preview page

HANDLE = "salaf_sample"


def _widget(message: dict) -> str:
    msg_id = message["id"]
    forwarded = ""
    if message.get("forwarded_from"):
        forwarded = ('<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
                     f'<a class="tgme_widget_message_forwarded_from_name" href="https://t.me/x">'
                     f'<span>{html.escape(message["forwarded_from"])}</span></a></div>')
    media = ('<a class="tgme_widget_message_photo_wrap" style="background-image:url(p.jpg)"></a>'
             if _has_media(message) else "")
    edited = "edited " if message.get("edited") else ""
    return (f'<div class="tgme_widget_message_wrap js-widget_message_wrap">'
            f'<div class="tgme_widget_message text_not_supported_wrap js-widget_message" data-post="{HANDLE}/{msg_id}">'
            f'<div class="tgme_widget_message_bubble">{forwarded}{media}'
            f'<div class="tgme_widget_message_text js-message_text" dir="auto">{_body_html(message, tme=True)}</div>'
            f'<div class="tgme_widget_message_footer"><div class="tgme_widget_message_info short js-message_info">'
            f'<span class="tgme_widget_message_views">{msg_id * 37 / 1000:.1f}K</span>'
            f'<span class="tgme_widget_message_meta">{edited}<a class="tgme_widget_message_date" '
            f'href="https://t.me/{HANDLE}/{msg_id}"><time datetime="{_utc(message).isoformat()}" class="time">'
            f'</time></a></span></div></div></div></div></div>')


def tme_page(export: dict) -> str:
    widgets = "\n".join(_widget(m) for m in export["messages"] if m.get("type") == "message")
    first = export["messages"][0]["id"]
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
            '<div class="tgme_channel_info"><div class="tgme_channel_info_header">'
            f'<div class="tgme_channel_info_header_title"><span dir="auto">{html.escape(export["name"])}</span></div>'
            f'</div></div><section class="tgme_channel_history js-message_history">'
            f'<div class="tme_messages_more_wrap"><a class="tme_messages_more js-messages_more" '
            f'data-before="{first}" href="/s/{HANDLE}?before={first}"></a></div>\n{widgets}\n'
            '</section></body></html>')


def test_tme_preview_page_gives_the_posts_of_the_real_json_export(tmp_path, export, json_posts):
    path = tmp_path / "page.html"
    path.write_text(tme_page(export), encoding="utf-8")
    assert formats.detect(path) is tme_preview
    page = tme_preview.parse_page(path.read_text(encoding="utf-8"))
    assert page.channel == HANDLE and page.title == export["name"]
    assert page.before == export["messages"][0]["id"]
    got = {p.external_id: p for p in page.posts}
    assert set(got) == set(json_posts)
    by_id = {str(m["id"]): m for m in export["messages"]}
    for msg_id, want in json_posts.items():
        _same_post(got[msg_id], want)
        post = got[msg_id]
        assert post.url == f"https://t.me/{HANDLE}/{msg_id}"
        assert post.views == round(int(msg_id) * 37 / 1000, 1) * 1000
        assert (dict(post.extra).get("edited") == "1") == bool(by_id[msg_id].get("edited"))
    # emoji came through the <i class="emoji"><b>…</b></i> wrapping as the characters themselves
    assert any("📚" in p.text for p in got.values()) == any("📚" in p.text for p in json_posts.values())


# ---------------------------------------------------------------- blog listing HTML (kexue.fm shape)

def blog_html(entries: list[blog_listing.Entry]) -> str:
    posts = []
    for n, e in enumerate(entries):
        paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in e.excerpt.split("\n") if line)
        posts.append(f'<div class="Post"><h2><a href="/archives/{7000 + n}">{html.escape(e.title)}</a></h2>'
                     f'<div class="PostHead">By <a href="/author">{html.escape(e.author)}</a> | {e.date} | '
                     f'{e.readers}位读者 | <a href="#cite">引用</a></div>'
                     f'<div class="PostContent">{paragraphs}</div></div>')
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="canonical" href="https://kexue.fm/">'
            '<script>var x = "By nobody | 2020-01-01 | 1位读者";</script></head><body><div id="PostList">'
            + "".join(posts) + '</div><div class="footer">最近评论</div></body></html>')


def test_blog_html_listing_gives_the_posts_of_the_real_text_dump(tmp_path):
    dump = seed("003")
    from_text = list(blog_listing.parse_file(dump))
    entries = blog_listing.entries_from_text(dump.read_text(encoding="utf-8", errors="replace"))
    assert len(from_text) == len(entries) == 8
    page = tmp_path / "listing.html"
    page.write_text(blog_html(entries), encoding="utf-8")
    assert formats.detect(page) is blog_listing
    from_html = list(blog_listing.parse_file(page))
    # same article, same post: ids derive from blog + title + date in both forms
    assert [p.external_id for p in from_html] == [p.external_id for p in from_text]
    for got, want, n in zip(from_html, from_text, range(len(entries))):
        assert got.title == want.title
        assert got.published_at == want.published_at
        assert dict(got.extra) == dict(want.extra)
        assert squash(got.text) == squash(want.text)
        assert got.url == f"https://kexue.fm/archives/{7000 + n}"
    assert dict(from_html[0].extra) == {"author": "苏剑林", "readers": "98325"}
    assert any("\ufffd" in p.text for p in from_text) == any("\ufffd" in p.text for p in from_html)
