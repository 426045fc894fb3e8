#!/usr/bin/env bash
# The test command: sets up the Python interop venv (py-libp2p) if needed,
# then runs every test. Usage: bash tests/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/interop-venv
req=tests/interop/requirements.txt
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
  echo "== setting up the interop venv ($venv)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$venv/requirements.txt"
fi
export PEERAPI_INTEROP_PYTHON="$PWD/$venv/bin/python"

cargo test --locked "$@"
