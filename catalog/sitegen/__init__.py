"""The static site: catalog -> pages (Jinja templates in ``catalog/sitegen/content/templates``)
in the mkdocs-material theme -> Pagefind search index.

Entry points: `catalog.sitegen.build.build_site(engine, out, strict=, full=)` and
`serve_site(...)`; `catalog.sitegen.generate.generate_docs` writes what mkdocs reads. Most
pages are stamped into a theme shell (`stamp`), the search index is cut into shards
(`search`); slugs live in `slugs`, escaping of post data in `escape`. Publishing: the site's
public address and head tags in `meta`, the sitemap in `sitemap`, atomic generations of the
served folder in `swap`, `digest site deploy` in `deploy`.

This ``__init__`` imports nothing: leaf helpers such as `slugs` are imported by modules the
builder itself depends on (`catalog.bibtex`), so a package import that pulled in the builder
would close an import cycle.
"""
