"""Search shards that do not cascade (catalog/sitegen/shards.py): boundaries kept from the last
manifest, new posts touching only the newest post shard or starting a new one, papers and other
pages in shards of their own."""

from __future__ import annotations

from pathlib import Path

from catalog.sitegen.search import index_site, read_manifest
from catalog.sitegen.shards import POSTS, cut, paper_key, post_key


def items(*numbers: int) -> list[tuple[str, str]]:
    return [(f"k{n:03d}", f"p{n}") for n in numbers]


def layout(shards) -> list[tuple[str, list[str]]]:
    return [(s["name"], s["pages"]) for s in shards]


def test_a_first_cut_counts_from_the_oldest_item():
    assert layout(cut(POSTS, items(*range(7)), [], 3)) == [
        ("shard-0002", ["p6"]), ("shard-0001", ["p5", "p4", "p3"]), ("shard-0000", ["p2", "p1", "p0"])]
    assert cut(POSTS, [], [], 3) == []


def test_boundaries_stay_where_the_last_manifest_put_them():
    first = cut(POSTS, items(*range(5)), [], 2)  # [p4] [p3 p2] [p1 p0]
    previous = [{"path": s["name"] + "/", "first": s["first"], "last": s["last"]} for s in first]
    # one new post: the newest shard is not full, it takes it
    assert layout(cut(POSTS, items(*range(6)), previous, 2)) == [
        ("shard-0002", ["p5", "p4"]), ("shard-0001", ["p3", "p2"]), ("shard-0000", ["p1", "p0"])]
    # three new posts: the newest shard would hold 4, so the ones newer than all it held start new shards
    assert layout(cut(POSTS, items(*range(8)), previous, 2)) == [
        ("shard-0004", ["p7"]), ("shard-0003", ["p6", "p5"]), ("shard-0002", ["p4"]),
        ("shard-0001", ["p3", "p2"]), ("shard-0000", ["p1", "p0"])]
    # an old post deleted: only its own shard changes; a shard left empty is dropped
    assert layout(cut(POSTS, items(0, 2, 3, 4), previous, 2)) == [
        ("shard-0002", ["p4"]), ("shard-0001", ["p3", "p2"]), ("shard-0000", ["p0"])]
    assert layout(cut(POSTS, items(2, 3, 4), previous, 2)) == [("shard-0002", ["p4"]), ("shard-0001", ["p3", "p2"])]
    # a post dated between two old ones joins the shard whose range holds it
    backfilled = items(*range(5)) + [("k002x", "late")]
    assert layout(cut(POSTS, backfilled, previous, 2))[1] == ("shard-0001", ["p3", "late", "p2"])


def test_sort_keys_order_posts_by_date_and_papers_by_arxiv_id():
    from datetime import datetime, timezone

    early, late = datetime(2020, 1, 2, tzinfo=timezone.utc), datetime(2020, 1, 2, 0, 0, 1, tzinfo=timezone.utc)
    assert post_key(None, 99) < post_key(early, 5) < post_key(early, 6) < post_key(late, 1)
    assert paper_key("hep-th/9901001") < paper_key("0704.0001") < paper_key("2004.13342") < paper_key("2301.00001")


def article_page(text: str) -> str:
    return f"<html><body><article><div data-pagefind-body>{text}</div><!--/digest:search--></article></body></html>"


def write(site: Path, rel: str, text: str) -> str:
    path = site / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(article_page(text))
    return rel


def test_new_posts_and_papers_reindex_only_their_newest_shard(tmp_path):
    site = tmp_path / "site"
    posts = [f"posts/post-{i}/index.html" for i in range(5)]
    papers = [(f"1{2000 + i}.00001", write(site, f"papers/p{i}/index.html", f"<h1>Paper {i}</h1>")) for i in range(3)]
    write(site, "about/index.html", "<h1>About</h1>")

    def build(n_posts: int) -> dict[str, int]:
        for i in range(n_posts):  # a post's page is written when it is added
            write(site, posts[i], f"<h1>Post {i}</h1><p>word{i}</p>")
        newest_first = posts[:n_posts][::-1]
        index_site(site, newest_first, shard_posts=2, post_keys=[f"{i:03d}" for i in range(n_posts)][::-1],
                   papers=papers)
        bundles = site / "pagefind"
        return {s["path"]: (bundles / s["path"] / "pagefind-entry.json").stat().st_mtime_ns
                for s in read_manifest(site)["shards"]}

    first = build(3)
    assert list(first) == ["shard-0001/", "papers-0001/", "pages/", "shard-0000/", "papers-0000/"]
    second = build(4)  # the newest post shard held one post: it takes the new one and is indexed again
    assert second["shard-0001/"] != first["shard-0001/"]
    assert {k: v for k, v in second.items() if k != "shard-0001/"} == {k: v for k, v in first.items()
                                                                      if k != "shard-0001/"}
    third = build(5)  # it is full now: the new post starts shard-0002, nothing else is indexed again
    assert list(third) == ["shard-0002/", "papers-0001/", "pages/", "shard-0001/", "papers-0000/", "shard-0000/"]
    assert {k: v for k, v in third.items() if k != "shard-0002/"} == second
    manifest = {s["path"]: s for s in read_manifest(site)["shards"]}
    assert [manifest[k]["posts"] for k in ("shard-0002/", "shard-0001/", "shard-0000/")] == [1, 2, 2]

    papers.append(("12003.00001", write(site, "papers/p3/index.html", "<h1>Paper 3</h1>")))
    fourth = build(5)  # a new paper: the newest paper shard held one, it takes it; no post shard is touched
    assert fourth["papers-0001/"] != third["papers-0001/"]
    assert {k: v for k, v in fourth.items() if k != "papers-0001/"} == {k: v for k, v in third.items()
                                                                       if k != "papers-0001/"}
