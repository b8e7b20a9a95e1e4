"""The Jinja environment of the site's templates: autoescaping as inert Markdown (`escape`),
strict undefined names, the link globals (`links`), and the number and date filters."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from catalog.models import as_utc
from catalog.sitegen import escape
from catalog.sitegen.links import PageLinks, page_href
from catalog.sitegen.search import cjk_terms
from catalog.sitegen.paths import SITE_SRC
from reproductions.report import num


def template_env(templates: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates or SITE_SRC / "templates")),
        autoescape=True,  # values are escaped ...
        finalize=escape.finalize,  # ... as inert Markdown, not only as HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates do not change during a build; skips a stat per page
    )
    # cjk_terms (jieba) runs when a post page is rendered: a build that renders few pages skips it
    env.globals.update(href=page_href, url=PageLinks(), memo=Memo(), cjk_terms=cjk_terms)
    env.filters.update(
        inline=escape.md_inline,
        block=escape.md_block,
        html=escape.html_text,
        yaml=escape.yaml_value,
        link=escape.md_link,
        ahref=escape.html_link,
        url=lambda v: Markup(escape.safe_url(v) or ""),
        num=format_number,
        date=format_date,
    )
    return env


class Memo:
    """`memo(key, fn, *args)` in a template: fn(*args) the first time `key` is seen, then the same
    result (see partials/lists.md.j2; one per environment, so one per build)."""

    def __init__(self) -> None:
        self.results: dict[tuple, Any] = {}

    def __call__(self, key: tuple, fn: Any, *args: Any) -> Any:
        try:
            return self.results[key]
        except KeyError:
            result = self.results[key] = fn(*args)
            return result


def format_number(value: Any) -> str:
    """Numbers with 4 significant digits; containers as "k=v, …" text, never a Python dict dump."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_number(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(format_number(v) for v in value)
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):  # 60000 stays as it is; 4447872 would show 7 significant digits
        return str(value) if len(str(abs(value)).rstrip("0")) <= 4 else num(value)
    if isinstance(value, float):
        return num(value, 4, trim=True)
    return str(value)


def format_date(value: datetime | None, precision: str = "second") -> Markup:
    """Digits, "-", ":" and "UTC" only: inert in Markdown and HTML alike, so marked safe."""
    value = as_utc(value)
    if value is None:
        return Markup("undated")
    if precision == "day":
        return Markup(value.strftime("%Y-%m-%d"))
    return Markup(value.strftime("%Y-%m-%d %H:%M UTC"))
