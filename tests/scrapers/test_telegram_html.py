from datetime import datetime, timezone

import pytest

from scrapers import telegram_html
from scrapers.errors import ParseError

EXPORT = """<!DOCTYPE html>
<html><head><meta charset="utf-8"/><title>Exported Data</title></head>
<body><div class="page_wrap">
 <div class="page_header"><div class="content"><div class="text bold">
Papers Daily
 </div></div></div>
 <div class="page_body chat_page"><div class="history">
  <div class="message service" id="message-1"><div class="body details">27 April 2020</div></div>
  <div class="message default clearfix" id="message10">
   <div class="pull_left userpic_wrap"><div class="userpic"><div class="initials">P</div></div></div>
   <div class="body">
    <div class="pull_right date details" title="27.04.2020 13:15:00 UTC+03:00">13:15</div>
    <div class="from_name">Papers Daily</div>
    <div class="text">Scheduled DropHead <a href="https://arxiv.org/abs/2004.13342">paper</a><br>Регуляризация голов <a href="" onclick="return ShowHashtag(&quot;nlp&quot;)">#nlp</a></div>
   </div>
  </div>
  <div class="message default clearfix joined" id="message11">
   <div class="body">
    <div class="pull_right date details" title="27.04.2020 13:20:00">13:20</div>
    <div class="forwarded body">
     <div class="from_name">Other Channel<span class="date details" title="26.04.2020 09:00:00"> 26.04.2020 09:00:00</span></div>
     <div class="text">Forwarded text about https://github.com/org/repo</div>
    </div>
   </div>
  </div>
  <div class="message service" id="message12"><div class="body details">Papers Daily pinned a message</div></div>
  <div class="message default clearfix joined" id="message13">
   <div class="body"><div class="pull_right date details" title="27.04.2020 13:25:00">13:25</div><div class="text"> </div></div>
  </div>
 </div></div>
</div></body></html>"""


def test_messages_dates_links_forwards():
    posts = list(telegram_html.parse_text(EXPORT, source_name="messages.html"))
    assert [p.external_id for p in posts] == ["10", "11"]
    first, fwd = posts
    assert first.source.handle == "export:Papers Daily" and first.source.title == "Papers Daily"
    assert first.published_at == datetime(2020, 4, 27, 10, 15, tzinfo=timezone.utc)  # UTC+03:00 taken off
    assert first.text.splitlines() == ["Scheduled DropHead paper", "Регуляризация голов #nlp"]
    assert first.arxiv_ids == ("2004.13342",)  # from the hidden href
    assert first.hashtags == ("nlp",)
    assert fwd.forwarded_from == "Other Channel"
    assert fwd.published_at == datetime(2020, 4, 27, 13, 20, tzinfo=timezone.utc)
    assert fwd.links[0].kind == "github"


def test_sniff_and_missing_structure():
    assert telegram_html.sniff(EXPORT.encode())
    assert not telegram_html.sniff(b"<html><body><p>hello</p></body></html>")
    with pytest.raises(ParseError, match="div.history"):
        list(telegram_html.parse_text("<html><body><p>nothing</p></body></html>", source_name="x.html"))


def test_broken_blocks_do_not_crash():
    broken = EXPORT.replace('<div class="text">Forwarded', '<div class="txt">Forwarded').replace(
        'title="27.04.2020 13:15:00 UTC+03:00"', 'title="garbage"')
    posts = list(telegram_html.parse_text(broken))
    assert posts[0].published_at is None and [p.external_id for p in posts] == ["10"]
