"""pyproject.toml: the explicit package list matches the packages on disk."""

from __future__ import annotations

import tomllib

from helpers import REPO


def test_package_list_matches_the_tree():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for root in ("catalog", "scrapers", "reproductions")
        for init in (REPO / root).rglob("__init__.py")
    }
    assert listed == on_disk
    assert not any(p == "site" or p.startswith("site.") for p in listed)  # site/ is content, not a package
    assert config["project"]["scripts"]["digest"] == "catalog.cli:app"
