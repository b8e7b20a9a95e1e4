import pytest

from scrapers import mojibake


def damage(text: str) -> str:
    """The lossy variant itself: UTF-8 bytes read as ISO-8859-7, C1 bytes (0x80-0x9F) dropped."""
    data = bytes(b for b in text.encode("utf-8") if not 0x80 <= b <= 0x9F)
    return data.decode("iso-8859-7", errors="ignore")


@pytest.mark.parametrize("original, repaired", [
    ("The model’s weights don’t change", "The model’s weights don’t change"),
    ("a pretrained model — fine-tuned", "a pretrained model — fine-tuned"),
    ("a sentence such as “Leonardo starred”, then", "a sentence such as “Leonardo starred”, then"),
    ("reduced by ∼50-90% in size", "reduced by ∼50-90% in size"),
    ("master · open-data-science", "master · open-data-science"),
    ("café and naïve", "café and naïve"),
    ("wait for it…", "wait for it…"),
])
def test_certain_repairs_roundtrip(original, repaired):
    broken = damage(original) + " " + damage("it’s — done")  # two marks: the text is recognisably damaged
    assert broken != original + " it’s — done"
    assert mojibake.repair(broken) == repaired + " it’s — done"


def test_lost_emoji_removed_and_bullets_marked():
    text = damage("🔥🔥Title of a post\n✅ first point\n✅ second point\nIt’s fine — really")
    fixed = mojibake.repair(text)
    assert fixed.splitlines()[0] == "Title of a post"
    assert fixed.splitlines()[1] == "• first point"
    assert not mojibake.has_mojibake_chars(fixed.replace("•", "").replace("’", "").replace("—", ""))


def test_undamaged_greek_symbols_untouched():
    text = "β-VAE with λ = 0.1 and β = 4 works"
    assert not mojibake.looks_damaged(text)
    assert mojibake.repair(text) == text


def test_ftfy_runs_first_for_ordinary_mojibake():
    assert mojibake.repair("cafÃ© crÃ¨me") == "café crème"


def test_has_mojibake_chars():
    assert mojibake.has_mojibake_chars("nlpβ")
    assert not mojibake.has_mojibake_chars("nlp_2020")
