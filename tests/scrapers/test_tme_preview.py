from datetime import datetime, timezone

import pytest

from scrapers import tme_preview
from scrapers.errors import ParseError


def widget(msg_id: int, text: str, *, views: str = "1.2K", when: str = "2021-03-04T05:06:07+00:00",
           extra: str = "", channel: str = "papers_daily") -> str:
    return f"""
<div class="tgme_widget_message_wrap js-widget_message_wrap">
 <div class="tgme_widget_message text_not_supported_wrap js-widget_message" data-post="{channel}/{msg_id}">
  <div class="tgme_widget_message_bubble">
   <div class="tgme_widget_message_author"><a class="tgme_widget_message_owner_name"><span dir="auto">Papers Daily</span></a></div>
   {extra}
   <div class="tgme_widget_message_text js-message_text" dir="auto">{text}</div>
   <div class="tgme_widget_message_footer"><div class="tgme_widget_message_info">
    <span class="tgme_widget_message_views">{views}</span><span class="copyonly"> views</span>
    <span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" href="https://t.me/{channel}/{msg_id}"><time datetime="{when}" class="time">05:06</time></a></span>
   </div></div>
  </div>
 </div>
</div>"""


def page(widgets: list[str], before: int | None = None) -> str:
    more = (f'<a class="tme_messages_more js-messages_more" data-before="{before}" '
            f'href="/s/papers_daily?before={before}"></a>') if before else ""
    return f"""<!DOCTYPE html><html><head><meta charset="windows-1251"></head><body>
<div class="tgme_channel_info"><div class="tgme_channel_info_header_title"><span dir="auto">Papers Daily</span></div></div>
<section class="tgme_channel_history js-message_history">{more}{''.join(widgets)}</section></body></html>"""


PAGE = page([
    widget(41, '<i class="emoji" style="background-image:url(x)"><b>🔥</b></i> Linear attention '
               '<a href="https://arxiv.org/abs/2006.16236">paper</a><br/>'
               '<a href="?q=%23attention">#attention</a> <a href="?q=%23NeurIPSConf19">#NeurIPSConf19</a>'),
    widget(42, "Второй пост: регуляризация", views="845",
           extra='<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
                 '<a class="tgme_widget_message_forwarded_from_name" href="https://t.me/other">Other</a></div>'),
], before=41)


@pytest.mark.parametrize("value, expected", [("1.2K", 1200), ("845", 845), ("3M", 3_000_000), ("12.5K", 12500),
                                             ("1,234", 1234), ("", None), ("lots", None)])
def test_views(value, expected):
    assert tme_preview.parse_views(value) == expected


def test_page_posts_fields():
    p = tme_preview.parse_page(PAGE)
    assert p.channel == "papers_daily" and p.title == "Papers Daily" and p.before == 41
    first, second = p.posts
    assert (first.source.kind, first.source.handle, first.external_id) == ("telegram", "papers_daily", "41")
    assert first.url == "https://t.me/papers_daily/41"
    assert first.text.startswith("🔥 Linear attention paper")
    assert first.hashtags == ("attention", "neuripsconf19")
    assert first.arxiv_ids == ("2006.16236",)
    assert first.views == 1200
    assert first.published_at == datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert second.views == 845 and second.forwarded_from == "Other" and second.language == "ru"


def test_missing_elements_do_not_crash():
    bare = page(['<div class="tgme_widget_message" data-post="papers_daily/7">'
                 '<div class="tgme_widget_message_text">only text</div></div>',
                 '<div class="tgme_widget_message" data-post="broken"><div class="tgme_widget_message_text">x</div></div>'])
    [post] = tme_preview.parse_page(bare).posts
    assert post.published_at is None and post.views is None and post.text == "only text"


def test_not_a_preview_page():
    with pytest.raises(ParseError, match="tgme_widget_message"):
        tme_preview.parse_page("<html><body>hello</body></html>", source_name="x.html")
