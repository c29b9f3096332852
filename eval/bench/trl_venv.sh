#!/usr/bin/env bash
# Build (or reuse) .trl-venv in the repository root: TRL 1.16.0 beside distillgym, for
# `python -m distillgym.eval.bench.trl_compare`. TRL pulls its own transformers/accelerate/datasets releases, so it
# lives apart from the main virtualenv. torch is pinned to the CPU wheel on disk (an unpinned torch pulls a CUDA
# build). uv installs in well under a minute where pip takes several; pip is the fallback.
#
#   bash eval/bench/trl_venv.sh
#   HF_HUB_OFFLINE=1 .trl-venv/bin/python -m distillgym.eval.bench.trl_compare --steps 10
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.trl-venv
PY="$VENV/bin/python"
# trl==1.16.0 brings transformers, accelerate, datasets; the rest is what distillgym imports at run time
# (pyproject.toml [project] dependencies, and tokenizers for the tiny preset's tokenizer).
REQS=(torch==2.13.0 trl==1.16.0 "gymnasium>=1.1,<2" "numpy>=1.26" "typer>=0.12" "rich>=13" "tqdm>=4.66" "pyyaml>=6"
      "tokenizers>=0.20")
STAMP="$VENV/.distillgym-requirements"  # what the last complete build installed; any change rebuilds

# uv does not read pip's configuration: hand it pip's indexes, find-links and constraints (one argument a line).
uv_args_from_pip_config() {
    python3 - <<'EOF'
import subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
flags = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
         "constraint": "--constraint"}
seen = set()
for line in out.splitlines():
    key, _, value = line.partition("=")
    flag = flags.get(key.split(".", 1)[-1])
    for v in value.strip().strip("'\"").split() if flag else []:
        if (flag, v) not in seen:
            seen.add((flag, v))
            print(flag, v, sep="\n")
EOF
}

install() {  # install "$@" into the venv with uv when it is there, else pip
    if [ -x "$VENV/bin/uv" ]; then
        mapfile -t extra < <(uv_args_from_pip_config)
        "$VENV/bin/uv" pip install --quiet --python "$PY" --index-strategy unsafe-best-match "${extra[@]}" "$@"
    else
        "$PY" -m pip install --quiet --disable-pip-version-check "$@"
    fi
}

if [ ! -x "$PY" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "${REQS[*]}" ]; then
    start=$SECONDS
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    cert=$(python3 -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.cert='\(.*\)'$/\1/p" | head -n 1)
    if [ -n "$cert" ] && [ -z "${SSL_CERT_FILE:-}" ]; then export SSL_CERT_FILE="$cert"; fi
    "$PY" -m pip install --quiet --disable-pip-version-check uv || echo "uv unavailable: installing with pip"
    install "${REQS[@]}"
    echo "${REQS[*]}" > "$STAMP"
    echo "built $VENV in $((SECONDS - start)) s"
fi
install --no-deps -e .
"$PY" -c "import torch, transformers, trl; print('torch', torch.__version__, '| transformers', transformers.__version__,
      '| trl', trl.__version__)"
