import pytest

from scrapers.normalize import (ARXIV_ID_CONTEXTS, LINK_KINDS, analyze, classify_link, clean_text, detect_language, extract_arxiv, extract_hashtags,
                                extract_links, normalize_arxiv_id)
from scrapers.textblocks import find_second_copy, is_php_noise, strip_boilerplate, undouble


def test_clean_text_nfkc_zero_width_newlines():
    assert clean_text("ﬁne\u200b tuning\r\n\r\n\r\n  next  \n") == "fine tuning\n\n  next"  # indentation kept (code)
    assert clean_text("Ｔｒａｎｓｆｏｒｍｅｒ") == "Transformer"


@pytest.mark.parametrize("text, tags", [
    ("#NeurIPSConf19 and #nlp", ("neuripsconf19", "nlp")),
    ("Регуляризация #трансформеры #NLP", ("трансформеры", "nlp")),
    ("see https://example.com/page#section and github.com/a/b#readme", ()),
    ("C# and F# are languages; issue#12", ()),
    ("#1 priority, #2020", ()),
    ("#snake_case_tag, #tag.", ("snake_case_tag", "tag")),
    ("(#ICLR2020)", ("iclr2020",)),
])
def test_hashtags(text, tags):
    assert extract_hashtags(text) == tags


@pytest.mark.parametrize("text, ids, versions", [
    ("arxiv.org/abs/2004.13342", ("2004.13342",), ()),
    ("https://arxiv.org/pdf/2004.13342v2.pdf", ("2004.13342",), (("2004.13342", 2),)),
    ("arXiv:1807.03819v3 and arXiv: 1901.02860", ("1807.03819", "1901.02860"), (("1807.03819", 3),)),
    ("old style hep-th/9901001 and arxiv.org/abs/cs.LG/0101001", ("hep-th/9901001", "cs/0101001"), ()),
    ("bare 1807.03819v3.", ("1807.03819",), (("1807.03819", 3),)),
    ("call +7 (915) 1234.5678 or 8-800-2004.1334", (), ()),
    ("on 2020.04.27 we shipped v1.2004.13 and build 2004.133421", (), ()),
    ("price 1234.56789 and 9999.12345", (), ()),  # month 99 is no arXiv id
])
def test_arxiv_ids(text, ids, versions):
    assert extract_arxiv(text) == (ids, versions)


# One case per entry of ARXIV_ID_CONTEXTS (checked below), plus the forms around them.
ARXIV_FORMS = [
    ("arxiv-url", "https://arxiv.org/abs/2307.12037", "2307.12037", None),
    ("arxiv-url", "https://arxiv.org/pdf/2307.12037", "2307.12037", None),
    ("arxiv-url", "https://arxiv.org/pdf/2307.12037v2", "2307.12037", 2),
    ("arxiv-url", "https://arxiv.org/pdf/2307.12037v2.pdf", "2307.12037", 2),
    ("arxiv-url", "https://arxiv.org/pdf/2307.12037.pdf", "2307.12037", None),
    ("arxiv-url", "arxiv.org/abs/hep-th/9901001v3", "hep-th/9901001", 3),
    ("export-arxiv-url", "http://export.arxiv.org/abs/2307.12037v4", "2307.12037", 4),
    ("alphaxiv-url", "see https://www.alphaxiv.org/abs/2307.12037 for the discussion", "2307.12037", None),
    ("huggingface-papers", "https://huggingface.co/papers/2307.12037", "2307.12037", None),
    ("arxiv-doi", "https://doi.org/10.48550/arXiv.2307.12037", "2307.12037", None),
    ("arxiv-doi", "DOI 10.48550/ARXIV.2307.12037", "2307.12037", None),
    ("arxiv-label", "(arXiv: 2307.12037)", "2307.12037", None),
    ("arxiv-label", "arXiv:2307.12037v1", "2307.12037", 1),
    (None, "old style hep-th/9901001", "hep-th/9901001", None),
    (None, "hep-th/9901001", "hep-th/9901001", None),
    (None, "bare 2307.12037v2", "2307.12037", 2),
]


@pytest.mark.parametrize("context, text, ident, version", ARXIV_FORMS)
def test_arxiv_forms(context, text, ident, version):
    ids, versions = extract_arxiv(text)
    assert ids == (ident,)
    assert dict(versions).get(ident) == version


def test_every_arxiv_context_has_a_case():
    assert {name for name, _, _ in ARXIV_ID_CONTEXTS} <= {c for c, *_ in ARXIV_FORMS}
    for name, _, example in ARXIV_ID_CONTEXTS:  # the table's own examples yield an id too
        assert extract_arxiv(example)[0], name


@pytest.mark.parametrize("text", [
    "https://paperswithcode.com/paper/attention-is-all-you-need",  # a link kind, not an id
    "https://example.org/files/2307.12037",  # an id-shaped number inside some other path
    "https://doi.org/10.1145/2307.12037",  # a DOI that is not arXiv's
    "version 2.2307.12037",
])
def test_not_arxiv_ids(text):
    assert extract_arxiv(text) == ((), ())


@pytest.mark.parametrize("url, kind", [
    ("https://arxiv.org/abs/2307.12037", "arxiv"),
    ("https://www.alphaxiv.org/abs/2307.12037", "arxiv"),
    ("https://huggingface.co/papers/2307.12037", "arxiv"),
    ("https://doi.org/10.48550/arXiv.2307.12037", "arxiv"),
    ("https://paperswithcode.com/paper/attention-is-all-you-need", "paper"),
    ("https://openreview.net/forum?id=abc", "paper"),
    ("https://github.com/a/b", "github"),
    ("https://paperswithcode.com/sota/image-classification", "code"),
    ("https://huggingface.co/bert-base-uncased", "code"),
    ("https://habr.com/ru/articles/1/", "blog"),
    ("https://example.org/x", "other"),
])
def test_link_kinds(url, kind):
    assert classify_link(url) == kind


def test_every_link_kind_has_a_case():
    kinds = {k for k, _ in LINK_KINDS}
    assert kinds <= {classify_link(u) for u, _ in [
        ("https://arxiv.org/abs/1", 0), ("https://paperswithcode.com/paper/x", 0), ("https://github.com/x", 0),
        ("https://gitlab.com/x", 0), ("https://medium.com/x", 0)]}


def test_normalize_arxiv_id():
    assert normalize_arxiv_id("arXiv:1807.03819v3") == ("1807.03819", 3)
    assert normalize_arxiv_id("https://arxiv.org/abs/hep-th/9901001") == ("hep-th/9901001", None)
    with pytest.raises(ValueError):
        normalize_arxiv_id("not an id")


def test_links_schemeless_and_kinds():
    links = extract_links("Статья: arxiv.org/abs/2004.13342, код: https://github.com/a/b. "
                          "Colab https://colab.research.google.com/drive/x and paperswithcode.com/paper/y; "
                          "blog https://towardsdatascience.com/post")
    assert [(l.url, l.kind) for l in links] == [
        ("https://arxiv.org/abs/2004.13342", "arxiv"), ("https://github.com/a/b", "github"),
        ("https://colab.research.google.com/drive/x", "code"), ("https://paperswithcode.com/paper/y", "paper"),
        ("https://towardsdatascience.com/post", "other")]
    assert classify_link("https://gitlab.com/x/y") == "code"


@pytest.mark.parametrize("text, lang", [
    ("Регуляризация трансформеров через дропаут голов.", "ru"),
    ("Scheduled DropHead: A Regularization Method for Transformer Models\nZhou et al.\n"
     "Регуляризация трансформеров через дропаут голов.", "ru"),
    ('Немножко контекста: "Every time I fire a linguist, the performance of the speech recognizer goes up"', "ru"),
    ("强大的NVAE:以后再也不能说VAE生成的图像模糊了", "zh"),
    ("The authors propose the first large-scale language VAE model.", "en"),
    ("BERT", "en"),
    ("https://arxiv.org/abs/2004.13342 текст", "ru"),
    ("42 :)", None),
])
def test_language(text, lang):
    assert detect_language(text) == lang


def test_analyze_counts_hidden_links():
    facts = analyze("paper here #nlp", ["https://arxiv.org/abs/2004.13342"])
    assert facts.arxiv_ids == ("2004.13342",) and facts.hashtags == ("nlp",) and len(facts.links) == 1


def test_boilerplate():
    lines = ["Warning: mkdir(): No space left on device in /var/www/x.php on line 37", "real text",
             "Notice: Undefined variable $i in /var/www/x.php on line 260", "Warning: be careful"]
    assert strip_boilerplate(lines) == ["real text", "Warning: be careful"]
    assert is_php_noise("PHP Deprecated:  foo() in /a.php on line 3")


def test_undouble():
    body = ["Title", "first line of the body", "second line", "#nlp"]
    assert undouble(body + body[1:]) == body
    assert undouble(body + body) == body
    assert undouble(body) == body  # not doubled: unchanged
    assert find_second_copy(["a", "b", "a", "c", "d", "e"]) is None  # one repeated line is not a copy
    # the second copy carries a line the first cut, and the title only it has
    assert undouble(["", "body one", "body two", "Title", "body one", "extra", "body two"]) == \
        ["", "Title", "body one", "extra", "body two"]
