#!/usr/bin/env bash
# Refresh requirements.lock: every dependency (torch's CPU build aside, installed first) pinned with hashes,
# at the versions installed in the venv the test suite passed in. Run after changing pyproject.toml's
# dependencies and passing `make test` with the new versions:  bash scripts/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
"$VENV/bin/python" -m pip install -q uv
tested=$(mktemp)
trap 'rm -f "$tested"' EXIT
"$VENV/bin/python" -m pip freeze --exclude-editable | grep -v -E '^(uv|i2i-unlearn)==' > "$tested"
"$VENV/bin/uv" pip compile pyproject.toml --extra test --generate-hashes --no-emit-package torch \
    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    $( [ -d /opt/wheels ] && echo --find-links /opt/wheels ) --index-url https://pypi.org/simple --constraint "$tested" --no-header --no-annotate --quiet -o requirements.lock
echo "requirements.lock: $(grep -c '==' requirements.lock) packages pinned"
