"""The static site: catalog -> pages (Jinja templates in the top-level ``site/templates``)
in the mkdocs-material theme -> Pagefind search index.

Entry points: `catalog.sitegen.build.build_site(engine, out, strict=, full=)` and
`serve_site(...)`; `catalog.sitegen.generate.generate_docs` writes what mkdocs reads. Most
pages are stamped into a theme shell (`stamp`), the search index is cut into shards
(`search`); slugs live in `slugs`, escaping of post data in `escape`. Publishing: the site's
public address and head tags in `meta`, the sitemap in `sitemap`, atomic generations of the
served folder in `swap`, `digest site deploy` in `deploy`.

This ``__init__`` imports nothing, so importing one leaf helper such as `slugs` never
pulls in the builder.
"""
