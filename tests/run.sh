#!/usr/bin/env bash
# The test command: installs what the tests need where it can (the Python
# interop venvs with py-libp2p 0.8.1 and 0.6.0; tmux through the system's
# package manager), then runs every test.
# Usage: bash tests/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

# venv DIR REQUIREMENTS: (re)creates DIR when its requirements changed.
venv() {
  local dir=$1 req=$2
  if [ ! -x "$dir/bin/python" ] || ! cmp -s "$req" "$dir/requirements.txt"; then
    echo "== setting up the interop venv $dir ($(head -n 1 "$req"))"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    cp "$req" "$dir/requirements.txt"
  fi
}
venv target/interop-venv tests/interop/requirements.txt
venv target/interop-venv-0.6.0 tests/interop/requirements-0.6.0.txt
export PEERAPI_INTEROP_PYTHON="$PWD/target/interop-venv/bin/python"
export PEERAPI_INTEROP_PYTHON_060="$PWD/target/interop-venv-0.6.0/bin/python"

# The console tests drive the real terminal UI through tmux.
if ! command -v tmux >/dev/null; then
  echo "== installing tmux (the console tests drive the console through it)"
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    ($SUDO apt-get update && $SUDO apt-get install -y tmux) >/dev/null
  else
    echo "tmux is missing and there is no apt-get here: install tmux, then run this again" >&2
    exit 1
  fi
fi

# The attach tests reach a node through a real sshd on 127.0.0.1.
if [ ! -x /usr/sbin/sshd ]; then
  echo "== installing openssh-server (the attach tests go through a real sshd)"
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    ($SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends openssh-server openssh-client) >/dev/null
  else
    echo "sshd is missing and there is no apt-get here: install openssh-server, then run this again" >&2
    exit 1
  fi
fi

cargo test --locked "$@"
