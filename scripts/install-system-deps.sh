#!/usr/bin/env bash
# System packages distillgym needs beyond PyPI: bubblewrap (bwrap), the OS jail of the Apps sandbox's worker
# (docs/apps.md). Idempotent; uses sudo when not root. Without it, Apps-v0 refuses to start rather than run agent
# code with less isolation (ask for a weaker level explicitly with DISTILLGYM_SANDBOX_ISOLATION=netns).
set -euo pipefail

if command -v bwrap >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi
if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q bubblewrap >/dev/null
    }
elif command -v dnf >/dev/null 2>&1; then
    $SUDO dnf install -y -q bubblewrap
elif command -v apk >/dev/null 2>&1; then
    $SUDO apk add -q bubblewrap
else
    echo "install bubblewrap (bwrap) with your system's package manager" >&2
    exit 1
fi
command -v bwrap >/dev/null
