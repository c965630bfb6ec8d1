#!/usr/bin/env bash
# Runs whynoip's test suite (the README's test command). Lab tests need root.
set -euo pipefail
cd "$(dirname "$0")"
[[ -x .venv/bin/python ]] || ./install.sh
exec .venv/bin/python -m pytest "$@"
