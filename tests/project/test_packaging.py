"""pyproject.toml: the packages setuptools finds are the packages on disk (plus the sample data folder)."""

from __future__ import annotations

import tomllib

from support.helpers import REPO


def test_package_list_matches_the_tree():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    from setuptools import find_namespace_packages

    find = config["tool"]["setuptools"]["packages"]["find"]
    found = set(find_namespace_packages(str(REPO), include=find["include"], exclude=find.get("exclude", ())))
    data = {p for p in found if not (REPO.joinpath(*p.split(".")) / "__init__.py").exists()}
    assert {".".join(p.split(".")[:2]) for p in data} == {"catalog.sample"}  # data folders only
    listed = found - data
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for root in ("catalog", "scrapers", "reproductions")
        for init in (REPO / root).rglob("__init__.py")
    }
    assert listed == on_disk
    assert not any(p == "site" or p.startswith("site.") for p in listed)  # site/ is content, not a package
    assert config["project"]["scripts"]["digest"] == "catalog.cli:app"
