#!/usr/bin/env bash
# Type-check the distillgym package with mypy (settings: [tool.mypy] in pyproject.toml).
# mypy does not read setuptools' package-dir mapping (distillgym.envs lives in envs/, ...), so the check runs over a
# tree of symlinks that lays the folders out under their import names: build/typecheck/distillgym. The same tree
# serves editors and other static tools (point their search path at build/typecheck).
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import os, shutil, tomllib
from pathlib import Path

mapping = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
root = Path("build/typecheck")
shutil.rmtree(root, ignore_errors=True)
top = root / "distillgym"
top.mkdir(parents=True)
for f in Path(mapping["distillgym"]).iterdir():  # the spine: its files and folders
    if f.name != "__pycache__":
        (top / f.name).symlink_to(os.path.relpath(f.resolve(), top))
for name, folder in mapping.items():
    if name != "distillgym":
        link = root / name.replace(".", "/")
        link.symlink_to(os.path.relpath(Path(folder).resolve(), link.parent))
PY
cd build/typecheck
exec python -m mypy --config-file ../../pyproject.toml --cache-dir ../mypy_cache -p distillgym "$@"
