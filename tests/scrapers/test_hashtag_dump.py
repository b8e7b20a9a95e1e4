from scrapers import hashtag_dump, mojibake
from support.helpers import seed
from test_mojibake import damage

POST_A = """🔥Sparse Experts Revisited
tl;dr — mixtures of experts are back.
The authors’ router is simple.
paper: https://arxiv.org/abs/2101.03961
#nlp #moe"""
POST_A_BODY = POST_A.split("\n", 1)[1]
POST_B_BODY = """Second post body with “quotes” in it.
It doesn’t have a title line in the first copy.
#cv #ViT"""

DUMP = "\n".join([
    damage(POST_A), damage(POST_A_BODY),
    damage("🔥"), damage(POST_B_BODY), "A Vision Transformer Note", damage(POST_B_BODY),
])


def parse(text=DUMP):
    return list(hashtag_dump.parse_text(text, handle="testchannel"))


def test_posts_split_once_each_and_repaired():
    a, b = parse()
    assert a.title == "Sparse Experts Revisited"
    assert a.text.count("mixtures of experts") == 1
    assert "tl;dr — mixtures" in a.text and "authors’ router" in a.text
    assert a.hashtags == ("nlp", "moe") and a.arxiv_ids == ("2101.03961",)
    assert b.title == "A Vision Transformer Note"  # the title only the second copy had
    assert b.text.count("Second post body") == 1 and "“quotes”" in b.text
    assert b.hashtags == ("cv", "vit")


def test_raw_untouched_and_ids_stable():
    a, b = parse()
    assert a.raw == "\n".join([damage(POST_A), damage(POST_A_BODY)])
    assert [p.external_id for p in parse()] == [a.external_id, b.external_id]
    assert not mojibake.has_mojibake_chars(a.external_id + b.external_id)


def test_seed_004_hashtags_optimus_and_no_doubled_bodies():
    posts = list(hashtag_dump.parse_file(seed("004")))
    assert len(posts) == 11
    tags = {t for p in posts for t in p.hashtags}
    assert {"nlp", "bert", "neuripsconf19"} <= tags
    assert not any(mojibake.has_mojibake_chars(t) for t in tags)
    optimus = [p for p in posts if "2004.04092" in p.arxiv_ids]
    assert len(optimus) == 1 and optimus[0].title.startswith("Optimus")
    assert ("2004.04092", 1) in optimus[0].arxiv_versions
    for p in posts:
        lines = [ln for ln in p.text.splitlines() if len(ln) > 40]
        assert len(lines) == len(set(lines)), f"doubled body in {p.title!r}"
        assert "ββ" not in p.text and "βs " not in p.text
        assert not mojibake.has_mojibake_chars(p.title)
    assert any("BERT’s" in p.text for p in posts)
    assert sum("ββ" in p.raw for p in posts) >= 9  # raw keeps the damage
