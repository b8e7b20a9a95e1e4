"""Ships the site's sources (the top-level site/ folder and mkdocs.yml) inside the package.

Everything else is configured in pyproject.toml. In a checkout the site generator reads
site/ and mkdocs.yml at the repository root; a wheel has no root, so the build copies them
to catalog/sitegen/content/ with the same relative layout (catalog/sitegen/paths.py finds
either). Editable installs read the checkout and need no copy.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
TARGET = Path("catalog", "sitegen", "content")


class BuildPyWithSite(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, TARGET)
        if target.exists():
            shutil.rmtree(target)  # a stale copy from an earlier build must not ship removed files
        target.mkdir(parents=True)
        shutil.copy2(ROOT / "mkdocs.yml", target / "mkdocs.yml")
        shutil.copytree(ROOT / "site", target / "site", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithSite})
