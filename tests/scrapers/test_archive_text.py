from datetime import datetime, timezone

from scrapers import archive_text
from support.helpers import seed

DUMP = """Size: x y z

Test Channel

2021 March 3
Test Channel
источник
Test Channel
Sparse Mixtures Revisited
arxiv.org/abs/2103.01234

Короткий обзор: разреженные смеси экспертов снова в моде.
источник
2021 March 4
Test Channel
Переслано от Other Person
A forwarded note about github.com/example/repo
источник
Test Channel
Переслано от Someone Else
источник
Test Channel
Same text twice
источник
Test Channel
Same text twice
источник
"""


def parse(text=DUMP):
    return list(archive_text.parse_text(text, source_name="dump.txt"))


def test_posts_split_dated_and_empty_ones_skipped():
    posts = parse()
    assert [p.title for p in posts] == ["Sparse Mixtures Revisited", "A forwarded note about github.com/example/repo",
                                        "Same text twice", "Same text twice"]
    first = posts[0]
    assert first.published_at == datetime(2021, 3, 3, tzinfo=timezone.utc)
    assert first.date_precision == "day"
    assert first.arxiv_ids == ("2103.01234",)
    assert first.links[0].url == "https://arxiv.org/abs/2103.01234"
    assert first.source.handle == "test-channel" and first.source.title == "Test Channel"
    assert first.language == "ru"


def test_forward_marker_becomes_a_field_not_text():
    fwd = parse()[1]
    assert fwd.forwarded_from == "Other Person"
    assert "Переслано" not in fwd.text
    assert fwd.links[0].kind == "github"


def test_ids_stable_distinct_and_independent_of_other_posts():
    a = [p.external_id for p in parse()]
    assert a == [p.external_id for p in parse()]
    assert len(set(a)) == len(a)  # identical bodies on one day still get two ids
    # a post inserted on another day does not move the ids of the others
    shifted = DUMP.replace("2021 March 4\n", "2021 March 4\nTest Channel\nA new first post\nисточник\n")
    b = {p.title: p.external_id for p in parse(shifted)}
    assert b["Sparse Mixtures Revisited"] == a[0]
    assert b["A forwarded note about github.com/example/repo"] == a[1]


def test_file_cut_mid_post_keeps_what_is_there():
    posts = parse(DUMP + "2021 March 5\nTest Channel\nunfinished post")
    assert posts[-1].title == "unfinished post"


def test_seed_000_drophead_and_attention_posts():
    posts = list(archive_text.parse_file(seed("000")))
    assert len(posts) == 11
    drophead = [p for p in posts if "2004.13342" in p.arxiv_ids]
    assert len(drophead) == 1 and drophead[0].title.startswith("Scheduled DropHead")
    assert drophead[0].published_at == datetime(2020, 4, 29, tzinfo=timezone.utc)
    assert any("15 строчек" in p.text and "self-attention" in p.text for p in posts)
    assert all("источник" not in p.text for p in posts)


def test_seed_002_header_line_is_not_a_post():
    posts = list(archive_text.parse_file(seed("002")))
    assert len(posts) == 6
    assert posts[0].title.startswith("mT5")
    assert {"2010.11934", "1910.10683"} <= set(posts[0].arxiv_ids)
    assert any(link.kind == "github" for link in posts[0].links)
