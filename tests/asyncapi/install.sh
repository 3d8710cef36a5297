#!/usr/bin/env bash
# Installs the AsyncAPI parser (npm @asyncapi/parser, pinned in package.json) into a folder
# (default target/asyncapi-parser) for tests/tests/asyncapi.rs; does nothing if it is
# already there at that version.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/../../target/asyncapi-parser}"
mkdir -p "$dir"
if [ -d "$dir/node_modules/@asyncapi/parser" ] && cmp -s "$here/package.json" "$dir/package.json"; then
    exit 0
fi
cp "$here/package.json" "$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --silent --omit=dev
