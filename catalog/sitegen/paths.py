"""Where the site's sources are: the top-level `site/` folder and `mkdocs.yml` of a checkout,
or their copy inside the package (`catalog/sitegen/content/`) in an installed wheel.

The wheel keeps the checkout's relative layout (`content/mkdocs.yml` beside `content/site/`,
see setup.py), so the one mkdocs.yml works in both places.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
PACKAGED = Path(str(resources.files("catalog.sitegen"))) / "content"


def _site_root() -> Path:
    # A checkout wins: an editable install has no packaged copy, and a wheel's site-packages
    # holds no mkdocs.yml beside a site/ folder.
    if (CHECKOUT / "mkdocs.yml").is_file() and (CHECKOUT / "site" / "templates").is_dir():
        return CHECKOUT
    return PACKAGED


SITE_ROOT = _site_root()
SITE_SRC = SITE_ROOT / "site"  # templates/, overrides/, pages/
CONFIG_FILE = SITE_ROOT / "mkdocs.yml"
HOOKS = tuple(str(Path(__file__).with_name(name)) for name in ("raw_html_hook.py", "theme_memo_hook.py"))
