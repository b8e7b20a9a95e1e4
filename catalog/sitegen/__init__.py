"""The static site: catalog -> Markdown (Jinja templates in ``catalog/sitegen/content/templates``) -> mkdocs-material.

Entry points: `build_site(engine, out, strict=)` and `serve_site(...)`; `generate_docs`
writes the Markdown alone. Slugs live in `slugs`, escaping of post data in `escape`.
"""

from catalog.sitegen.build import BuildResult, build_site, serve_site
from catalog.sitegen.generate import generate_docs

__all__ = ["BuildResult", "build_site", "generate_docs", "serve_site"]
