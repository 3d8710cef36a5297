#!/usr/bin/env bash
# Installs schemathesis into a virtualenv (default target/schemathesis-venv) for the
# API fuzz test; does nothing if it is already there.
set -euo pipefail
venv="${1:-$(cd "$(dirname "$0")/../.." && pwd)/target/schemathesis-venv}"
requirements="$(dirname "$0")/requirements.txt"
if [ -x "$venv/bin/st" ] && cmp -s "$requirements" "$venv/requirements.txt"; then
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$venv/requirements.txt"
