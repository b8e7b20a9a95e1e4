"""The static site: catalog -> pages (Jinja templates in ``catalog/sitegen/content/templates``)
in the mkdocs-material theme -> Pagefind search index.

Entry points: `build_site(engine, out, strict=, full=)` and `serve_site(...)`;
`generate_docs` writes what mkdocs reads. Most pages are stamped into a theme shell
(`stamp`), the search index is cut into shards (`search`); slugs live in `slugs`,
escaping of post data in `escape`.
"""

from catalog.sitegen.build import BuildResult, build_site, serve_site
from catalog.sitegen.generate import generate_docs

__all__ = ["BuildResult", "build_site", "generate_docs", "serve_site"]
