import pytest

from scrapers import mirror_page
from scrapers.errors import ParseError
from support.helpers import seed

BODY = """Обзор: Sparse Attention

Статья: https://arxiv.org/abs/1904.10509
Идея простая: внимание только на часть позиций."""

PAGE = f"""Warning: mkdir(): Permission denied in /srv/site/view.php on line 12

Notice: Undefined index: q in /srv/site/view.php on line 40
Some Channel | Telegram Webview: some_channel/123 -
Telegram Group & Telegram Channel
{BODY}


mirror.example/some_channel/123
Create:
Last Update:

{BODY}

BY Some Channel


Share with your friend now:
mirror.example/some_channel/123

Telegram | DID YOU KNOW?
Unrelated footer text about markets and privacy.
"""


def test_one_post_with_handle_id_and_single_body():
    [post] = mirror_page.parse_text(PAGE)
    assert (post.source.kind, post.source.handle, post.external_id) == ("telegram", "some_channel", "123")
    assert post.url == "https://t.me/some_channel/123"
    assert post.text.count("Идея простая") == 1
    assert "Warning" not in post.text and "DID YOU KNOW" not in post.text and "footer" not in post.text
    assert post.arxiv_ids == ("1904.10509",)
    assert post.raw == PAGE


def test_second_copy_longer_is_merged():
    page = PAGE.replace(f"Create:\nLast Update:\n\n{BODY}", f"Create:\nLast Update:\n\n{BODY}\nДобавлено позже.")
    [post] = mirror_page.parse_text(page)
    assert post.text.endswith("Добавлено позже.") and post.text.count("Идея простая") == 1


def test_missing_title_is_a_parse_error():
    with pytest.raises(ParseError, match="Telegram Webview"):
        list(mirror_page.parse_text("just some text\n", source_name="x.txt"))


def test_seed_001_gonzo_ml_62():
    posts = list(mirror_page.parse_file(seed("001")))
    assert len(posts) == 1
    post = posts[0]
    assert (post.source.handle, post.external_id) == ("gonzo_ML", "62")
    assert set(post.arxiv_ids) == {"1807.03819", "1901.02860"}
    assert post.text.count("Базовых ограничений у Трансформера") == 1
    assert "No space left" not in post.text and "Sebi Act" not in post.text
