#!/usr/bin/env bash
# Usage: bench/peer/setup.sh VENV_DIR
# Creates (or refreshes) the peer's virtualenv at VENV_DIR. Idempotent: a stamp file in the
# venv holds the hash of requirements.txt, and nothing is installed when it already matches.
set -euo pipefail
venv="${1:?usage: setup.sh VENV_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
stamp="$venv/.peer-requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

# A venv moved or copied from elsewhere (its scripts name the old path) is made again.
if [[ -d "$venv" && "$(head -n 1 "$venv/bin/gunicorn" 2>/dev/null)" != "#!$(cd "$venv" && pwd -P)/bin/python"* ]]; then
  rm -rf "$venv"
fi
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
