from datetime import datetime, timezone

from scrapers import blog_listing
from support.helpers import seed

TEXT = """变分推断的一个小技巧
By 测试作者 | 2021-05-06 | 1234位读者 | 引用本文介绍一个小技巧。
第二段落里有 \ufffd 被截断的字符。
空摘要的文章
By 测试作者 | 2021-05-07 | 77位读者 | 引用另一篇:注意力的复杂度
By 测试作者 | 2021-05-08 | 1,500位读者 | 引用复杂度从平方降到线性。
最近评论
"""

LISTING = """<!DOCTYPE html><html><head><meta charset="gbk"><title>科学空间</title>
<link rel="canonical" href="https://blog.example/"></head><body>
<div id="main">
 <div class="Post">
  <h2 class="PostTitle"><a href="/archives/101">正则化的新视角</a></h2>
  <div class="PostInfo">By 测试作者 | 2021-06-01 | 4321位读者 | <a href="#cite">引用</a></div>
  <div class="PostContent"><p>权重衰减与L2正则的联系。</p><p>第二段。</p></div>
 </div>
 <div class="Post">
  <h2 class="PostTitle"><a href="/archives/102">没有摘要</a></h2>
  <div class="PostInfo">By 测试作者 | 2021-06-02 | 12位读者 | <a href="#cite">引用</a></div>
 </div>
</div>
<div class="sidebar"><h3>最近评论</h3><p>评论内容</p></div>
</body></html>"""

ARTICLE = """<html><head><link rel="canonical" href="https://blog.example/archives/101"></head><body>
<h1>正则化的新视角</h1>
<div class="meta">By 测试作者 | 2021-06-01 | 4400位读者 | 引用</div>
<div class="content"><p>全文第一段。</p></div>
<div class="comments"><p>不是正文</p></div>
</body></html>"""


def test_text_entries_fields_and_glued_title():
    posts = list(blog_listing.parse_text(TEXT))
    assert [p.title for p in posts] == ["变分推断的一个小技巧", "空摘要的文章", "另一篇:注意力的复杂度"]
    first, empty, third = posts
    assert dict(first.extra) == {"author": "测试作者", "readers": "1234"}
    assert first.published_at == datetime(2021, 5, 6, tzinfo=timezone.utc) and first.date_precision == "day"
    assert "\ufffd" in first.text  # kept, not a crash
    assert empty.text == "空摘要的文章"  # no excerpt: the glued text is the next title
    assert dict(third.extra)["readers"] == "1500"
    assert "最近评论" not in third.text and third.language == "zh"


def test_html_listing_and_article_share_ids_with_text_form():
    listing = list(blog_listing.parse_text(LISTING))
    assert [p.title for p in listing] == ["正则化的新视角", "没有摘要"]
    first = listing[0]
    assert first.url == "https://blog.example/archives/101"
    assert "权重衰减" in first.text and "第二段" in first.text and "评论" not in first.text
    assert first.source.handle == "blog.example"
    [article] = blog_listing.parse_text(ARTICLE)
    assert article.title == "正则化的新视角" and "全文第一段" in article.text and "不是正文" not in article.text
    assert article.external_id == first.external_id  # same blog, title and date: same post
    assert dict(article.extra)["readers"] == "4400"


def test_sniff_text_and_html():
    assert blog_listing.sniff(TEXT.encode())
    assert blog_listing.sniff(LISTING.encode())
    assert not blog_listing.sniff(b"By me | yesterday | many readers")


def test_seed_003_nvae_and_l2_entries():
    posts = {p.title: p for p in blog_listing.parse_file(seed("003"))}
    assert len(posts) == 8
    nvae = next(p for t, p in posts.items() if "NVAE" in t)
    assert nvae.published_at == datetime(2020, 7, 10, tzinfo=timezone.utc)
    assert dict(nvae.extra) == {"author": "苏剑林", "readers": "113498"}
    l2 = next(p for t, p in posts.items() if t.startswith("L2正则"))
    assert l2.published_at == datetime(2020, 8, 14, tzinfo=timezone.utc)
    assert "权重尺度偏移" in l2.title and "最近评论" not in l2.text
