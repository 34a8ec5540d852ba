#!/usr/bin/env bash
# Create LiteLLM's own virtualenv for benches/gateway_overhead.py (never the project's .venv).
#
#     benches/setup_litellm.sh [VENV_DIR] [LITELLM_SPEC]
#
# Defaults: .bench-venv/litellm and 'litellm[proxy]'. Prints the litellm binary's path.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$here/.bench-venv/litellm}"
spec="${2:-litellm[proxy]}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$spec"
"$venv/bin/litellm" --version >/dev/null 2>&1 || true
echo "$venv/bin/litellm"
