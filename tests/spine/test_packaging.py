"""The installed layout: every source folder is a listed package (a wheel built from pyproject.toml ships exactly the
listed ones; an editable install would hide a missing entry)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    found = set()
    for name, folder in setup["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            if "__pycache__" in rel.parts:
                continue
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), f"package folders missing from [tool.setuptools] packages: {sorted(found - listed)}"
    assert listed - found == set(), f"listed packages with no folder: {sorted(listed - found)}"


def test_the_worker_package_runs_as_a_directory() -> None:
    """The sandbox starts the worker as `python <worker folder>`: its __main__.py is there and imports only stdlib and
    its own siblings (the jail holds nothing else)."""
    worker = ROOT / "envs" / "apps" / "worker"
    assert (worker / "__main__.py").is_file()
    for path in worker.glob("*.py"):
        for line in path.read_text().splitlines():
            assert not line.startswith(("from distillgym", "import distillgym")), f"{path.name}: {line}"
