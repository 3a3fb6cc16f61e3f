#!/usr/bin/env bash
# Re-resolves third_party/python/requirements_lock.txt from requirements.in
# with exact versions and sha256 hashes (pip-tools in a throw-away venv).
# Existing pins are kept where they still satisfy requirements.in.
set -euo pipefail
cd "$(dirname "$0")/../third_party/python"
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet pip-tools
"$venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --no-emit-index-url \
  --no-emit-find-links --index-url https://pypi.org/simple \
  --output-file=requirements_lock.txt requirements.in
echo "updated $(pwd)/requirements_lock.txt"
